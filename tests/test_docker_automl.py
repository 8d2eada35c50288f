"""The image of a downloaded AutoML model (local_scoring/Dockerfile.automl), on the pip path.

The test writes a stand-in model folder shaped like the one `lab cloud download` writes: a
conda_env.yml in AutoML's form (python=3.9, a pip list, conda dependencies), a score.py in the
style of AutoML's v2 scoring file (inference-schema decorators, ``init()`` loading model.pkl from
AZUREML_MODEL_DIR with joblib, ``run(Inputs, GlobalParameters)``), and a model.pkl. The pickle
holds only a dict of parameters that score.py's model class reads, so no library version of the
host has to match the image's.

It builds the image with INSTALLER=pip and OFFLINE=1 on ``lab-python-base:bullseye`` (Python
3.9), runs it on a loopback port with LAB_PRIMARY_KEY and LAB_SECONDARY_KEY, and checks health,
swagger, the key check and a scored request. The contract suite (tests/contract/) then runs
against the container with the ``aci`` profile, the behaviour of AutoML's scoring file behind
the front. A second build checks that a python pin other than the base's stops the build.

Network: the tests themselves reach no host but loopback. The bullseye base image (from
deb.debian.org) and the stand-in's wheels (from PyPI, into
``$XDG_CACHE_HOME/lab/automl-test-wheels``) are prepared beforehand by
``python tests/test_docker_automl.py --prepare``, which .ci/run calls when `docker info` succeeds.
Without them the image tests skip and name that command.

Not covered: a real AutoML model (azureml-train-automl-runtime and azureml-defaults are not
installed; azureml-defaults needs fusepy, which has no wheel), the conda path (INSTALLER=conda
needs an image registry), and Python 3.10 models (Debian has no release with Python 3.10).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import pickle
import shutil
import subprocess
import sys
import tarfile
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
import yaml

from local_scoring.docker import conda_spec
from local_scoring.process import free_port
from test_docker import engine_unavailable_reason, wait_for_ok

ROOT = Path(__file__).resolve().parent.parent
DOCKER_DIR = ROOT / "local_scoring" / "docker"
BASE_IMAGE = "lab-python-base:bullseye"
IMAGE = "lab-automl-scoring:test"
READY_TIMEOUT_S = 180
BUILD_TIMEOUT_S = 1800
CONTRACT_TIMEOUT_S = 900

CONDA_ENV = """\
# Conda environment specification. The dependencies defined in this file will
# be automatically provisioned for runs with userManagedDependencies=False.

# Details about the Conda environment file format:
# https://conda.io/docs/user-guide/tasks/manage-environments.html#create-env-file-manually

name: project_environment
dependencies:
  # The python interpreter version.
  # Currently Azure ML only supports 3.8 and later.
- python=3.9.19

- pip:
  - azureml-inference-server-http==1.5.1
  - inference-schema==1.8
- numpy==1.23.5
- pandas==1.5.3
- scikit-learn==1.5.1
- psutil>5.0.0,<6.0.0
channels:
- anaconda
- conda-forge
"""

SCORE_PY = '''\
# A stand-in for AutoML's scoring_file_v_2_0_0.py: the same imports, schema decorators and
# run() signature, with a model class of its own in place of the AutoML pipeline.
import logging
import os

import joblib
import numpy as np
import pandas as pd

from inference_schema.parameter_types.numpy_parameter_type import NumpyParameterType
from inference_schema.parameter_types.pandas_parameter_type import PandasParameterType
from inference_schema.parameter_types.standard_py_parameter_type import StandardPythonParameterType
from inference_schema.schema_decorators import input_schema, output_schema

data_sample = PandasParameterType(pd.DataFrame({
    "age": pd.Series([57, 30], dtype="int64"),
    "job": pd.Series(["technician", "services"], dtype="object"),
    "duration": pd.Series([371, 95], dtype="int64"),
    "euribor3m": pd.Series([1.299, 4.857], dtype="float64"),
}))
input_sample = StandardPythonParameterType({"data": data_sample})
method_sample = StandardPythonParameterType("predict")
sample_global_params = StandardPythonParameterType({"method": method_sample})

result_sample = NumpyParameterType(np.array(["example_value"]))
output_sample = StandardPythonParameterType({"Results": result_sample})

logger = logging.getLogger("azureml.automl.core.scoring_script_v2")


class DurationModel:
    """A logistic curve on one column. The pickle contains only its parameters, as a dict."""

    def __init__(self, parameters):
        self.column = parameters["column"]
        self.threshold = parameters["threshold"]
        self.scale = parameters["scale"]
        self.classes = np.array(parameters["classes"], dtype=object)

    def predict_proba(self, data):
        values = data[self.column].astype("float64").to_numpy()
        positive = 1.0 / (1.0 + np.exp(-(values - self.threshold) / self.scale))
        return np.column_stack([1.0 - positive, positive])

    def predict(self, data):
        return self.classes[(self.predict_proba(data)[:, 1] >= 0.5).astype(int)]


def init():
    global model
    model_path = os.path.join(os.getenv("AZUREML_MODEL_DIR"), "model.pkl")
    logger.info("Loading model from path.")
    model = DurationModel(joblib.load(model_path))
    logger.info("Loading successful.")


@input_schema("GlobalParameters", sample_global_params, convert_to_provided_type=False)
@input_schema("Inputs", input_sample)
@output_schema(output_sample)
def run(Inputs, GlobalParameters={"method": "predict"}):
    data = Inputs["data"]
    if GlobalParameters.get("method", None) == "predict_proba":
        result = model.predict_proba(data)
    elif GlobalParameters.get("method", None) == "predict":
        result = model.predict(data)
    else:
        raise Exception(f"Invalid predict method argument received. GlobalParameters: {GlobalParameters}")
    if isinstance(result, pd.DataFrame):
        result = result.values
    return {"Results": result.tolist()}
'''

MODEL_PARAMETERS = {"column": "duration", "threshold": 300.0, "scale": 60.0, "classes": ["no", "yes"]}
RECORDS = [
    {"age": 57, "job": "technician", "duration": 371, "euribor3m": 1.299},
    {"age": 30, "job": "services", "duration": 95, "euribor3m": 4.857},
]


# -- conda_spec: the conda file to pip requirements, without an engine ------------------------------


def test_conda_parser_matches_yaml():
    assert conda_spec.parse_environment(CONDA_ENV) == yaml.safe_load(CONDA_ENV)


def test_conda_requirements_pip_list_first():
    environment = conda_spec.parse_environment(CONDA_ENV)

    lines = conda_spec.pip_requirements(environment["dependencies"])

    assert lines == [
        "azureml-inference-server-http==1.5.1", "inference-schema==1.8",
        "numpy==1.23.5", "pandas==1.5.3", "scikit-learn==1.5.1", "psutil>5.0.0,<6.0.0",
    ]


@pytest.mark.parametrize("spec, expected", [
    ("py-xgboost<=1.5.2", "xgboost<=1.5.2"),
    ("pytorch=2.1", "torch==2.1.*"),
    ("conda-forge::holidays=0.29=pyhd8ed1ab_0", "holidays==0.29.*"),
    ("scikit-learn 1.5.1 py39_0", "scikit-learn==1.5.1"),
    ("numpy 1.23.*", "numpy==1.23.*"),
    ("setuptools-git", "setuptools-git"),
])
def test_conda_spec_maps_to_pypi(spec, expected):
    assert conda_spec.pip_requirements([spec]) == [expected]


def test_conda_only_packages_listed_in_error():
    with pytest.raises(conda_spec.SpecError) as caught:
        conda_spec.pip_requirements(["numpy", "mkl=2023.1", "libgcc-ng>=12"])

    assert "mkl=2023.1, libgcc-ng>=12" in str(caught.value)
    assert "--skip" in str(caught.value)


def test_conda_only_package_skipped_on_request():
    assert conda_spec.pip_requirements(["numpy", "mkl=2023.1"], skip=("mkl",)) == ["numpy"]


def test_python_mismatch_names_both_versions():
    with pytest.raises(conda_spec.SpecError) as caught:
        conda_spec.check_python(["python=3.10.11"], "3.9.2")

    assert "python 3.10" in str(caught.value)
    assert "Python 3.9.2" in str(caught.value)


def test_python_pin_missing_is_error():
    with pytest.raises(conda_spec.SpecError, match="pins no python version"):
        conda_spec.check_python(["numpy"], "3.9.2")


def test_python_range_is_error():
    with pytest.raises(conda_spec.SpecError, match="not a single version"):
        conda_spec.check_python(["python>=3.8"], "3.9.2")


def test_unsupported_yaml_names_line():
    with pytest.raises(conda_spec.SpecError, match="line 3"):
        conda_spec.parse_environment("name: x\ndependencies:\n- [numpy, pandas]\n")


def run_conda_spec(tmp_path: Path, python: str) -> subprocess.CompletedProcess:
    conda_file = tmp_path / "conda_env.yml"
    conda_file.write_text(CONDA_ENV, encoding="utf-8")
    return subprocess.run(
        [sys.executable, str(DOCKER_DIR / "conda_spec.py"), "requirements", str(conda_file), "--python", python],
        capture_output=True, text=True,
    )


def test_conda_spec_cli_prints_requirements(tmp_path):
    result = run_conda_spec(tmp_path, "3.9.2")

    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == "azureml-inference-server-http==1.5.1"


def test_conda_spec_cli_rejects_other_python(tmp_path):
    result = run_conda_spec(tmp_path, "3.11.2")

    assert result.returncode == 1
    assert "pins python 3.9, but the base image has Python 3.11.2" in result.stderr


# -- the image ------------------------------------------------------------------------------------


def write_model_folder(folder: Path, conda_text: str = CONDA_ENV) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "conda_env.yml").write_text(conda_text, encoding="utf-8")
    (folder / "score.py").write_text(SCORE_PY, encoding="utf-8")
    (folder / "model.pkl").write_bytes(pickle.dumps(MODEL_PARAMETERS, protocol=4))
    return folder


PREPARE_COMMAND = "python tests/test_docker_automl.py --prepare"


def base_image_missing_reason() -> str | None:
    """Return why the bullseye base image is not available, or None when the engine has it."""
    if subprocess.run(["docker", "image", "inspect", BASE_IMAGE], capture_output=True).returncode == 0:
        return None
    return f"{BASE_IMAGE} is missing; build it with `{PREPARE_COMMAND}` (needs root and deb.debian.org)"


def build_base_image() -> str | None:
    """Build the bullseye base image when the engine lacks it; return why it cannot, or None."""
    if base_image_missing_reason() is None:
        return None
    if os.geteuid() != 0:
        return f"{BASE_IMAGE} is missing and build-base-image.sh needs root"
    result = subprocess.run([str(DOCKER_DIR / "build-base-image.sh"), "--suite", "bullseye"],
                            capture_output=True, text=True, timeout=900)
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["no output"])[-1]
        return f"the bullseye base image cannot be built here: {last[:200]}"
    return None


def wheel_cache_folder() -> Path:
    digest = hashlib.sha256((BASE_IMAGE + "\n" + CONDA_ENV).encode("utf-8")).hexdigest()[:16]
    cache_home = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache_home / "lab" / "automl-test-wheels" / digest


def cached_wheelhouse() -> tuple[Path | None, str | None]:
    """Return the prepared wheels for the stand-in's conda file, or why they are missing."""
    folder = wheel_cache_folder()
    if (folder / "complete").is_file():
        return folder, None
    return None, f"the stand-in model's wheels are not in {folder}; download them with `{PREPARE_COMMAND}`"


def download_wheelhouse(work_dir: Path) -> str | None:
    """Download the stand-in's wheels from PyPI into the cache folder; return why it failed, or None."""
    folder = wheel_cache_folder()
    if (folder / "complete").is_file():
        return None
    model_dir = write_model_folder(work_dir / "model")
    shutil.rmtree(folder, ignore_errors=True)
    result = subprocess.run(
        [str(DOCKER_DIR / "download-automl-wheels.sh"), str(model_dir)],
        capture_output=True, text=True, timeout=900, env={**os.environ, "PYTHON": sys.executable},
    )
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["no output"])[-1]
        return f"the stand-in model's wheels cannot be downloaded from PyPI: {last[:200]}"
    shutil.copytree(model_dir / "wheelhouse", folder)
    (folder / "complete").write_text("download-automl-wheels.sh finished\n", encoding="utf-8")
    return None


def build_context(model_dir: Path) -> bytes:
    """Tar the sources that Dockerfile.automl copies and the model folder (as ``model/``)."""
    buffer = io.BytesIO()

    def keep(info: tarfile.TarInfo) -> tarfile.TarInfo | None:
        if "__pycache__" in info.name.split("/") or info.name.startswith("local_scoring/docker/wheelhouse"):
            return None
        return info

    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for name in ("lab", "local_scoring"):
            tar.add(ROOT / name, arcname=name, filter=keep)
        tar.add(model_dir, arcname="model", filter=keep)
    return buffer.getvalue()


def docker_build(model_dir: Path, tag: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["docker", "build", "--quiet", "-f", "local_scoring/Dockerfile.automl",
         "--build-arg", f"BASE_IMAGE={BASE_IMAGE}", "--build-arg", "INSTALLER=pip",
         "--build-arg", "OFFLINE=1", "--build-arg", "MODEL_DIR=model", "-t", tag, "-"],
        input=build_context(model_dir), capture_output=True, timeout=BUILD_TIMEOUT_S,
    )


@dataclass(frozen=True)
class Service:
    container: str
    base: str
    primary: str
    secondary: str

    @property
    def scoring_uri(self) -> str:
        return self.base + "/score"

    def logs(self) -> str:
        result = subprocess.run(["docker", "logs", self.container], capture_output=True, text=True)
        return (result.stdout + result.stderr)[-3000:]


def wait_until_healthy(service: Service) -> None:
    def exited() -> str | None:
        state = subprocess.run(["docker", "inspect", "--format", "{{.State.Running}}", service.container],
                               capture_output=True, text=True).stdout.strip()
        return f"container {service.container} exited:\n{service.logs()}" if state != "true" else None

    try:
        wait_for_ok(service.base + "/", READY_TIMEOUT_S, exited)
    except TimeoutError as exc:
        raise TimeoutError(f"{exc}:\n{service.logs()}") from None


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    reason = engine_unavailable_reason() or base_image_missing_reason()
    if reason:
        pytest.skip(reason)
    folder = write_model_folder(tmp_path_factory.mktemp("automl") / "model")
    wheels, reason = cached_wheelhouse()
    if reason:
        pytest.skip(reason)
    shutil.rmtree(folder / "wheelhouse", ignore_errors=True)
    shutil.copytree(wheels, folder / "wheelhouse", ignore=shutil.ignore_patterns("complete"))
    return folder


@pytest.fixture(scope="module")
def service(model_dir):
    built = docker_build(model_dir, IMAGE)
    assert built.returncode == 0, built.stderr.decode("utf-8", "replace")[-3000:]
    port = free_port("127.0.0.1")
    name = f"lab-automl-test-{os.getpid()}"
    primary, secondary = "primary-" + os.urandom(12).hex(), "secondary-" + os.urandom(12).hex()
    subprocess.run(
        ["docker", "run", "--detach", "--name", name, "--publish", f"127.0.0.1:{port}:5001",
         "--env", "LAB_PRIMARY_KEY", "--env", "LAB_SECONDARY_KEY", IMAGE],
        env={**os.environ, "LAB_PRIMARY_KEY": primary, "LAB_SECONDARY_KEY": secondary},
        check=True, capture_output=True, timeout=120,
    )
    result = Service(container=name, base=f"http://127.0.0.1:{port}", primary=primary, secondary=secondary)
    try:
        wait_until_healthy(result)
        yield result
    finally:
        subprocess.run(["docker", "rm", "--force", name], capture_output=True, timeout=120)


def score(service: Service, key: str | None, method: str = "predict") -> requests.Response:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    body = {"Inputs": {"data": RECORDS}, "GlobalParameters": {"method": method}}
    return requests.post(service.scoring_uri, json=body, headers=headers, timeout=60)


@pytest.mark.docker
def test_automl_image_health(service):
    response = requests.get(service.base + "/", timeout=30)

    assert response.status_code == 200
    assert response.text == "Healthy"


@pytest.mark.docker
def test_automl_image_swagger_is_v2_style(service):
    response = requests.get(service.base + "/swagger.json", timeout=30)

    document = response.json()
    properties = document["definitions"]["ServiceInput"]["properties"]
    assert response.status_code == 200
    assert set(properties) == {"Inputs", "GlobalParameters"}
    assert list(properties["Inputs"]["properties"]["data"]["items"]["properties"]) == [
        "age", "job", "duration", "euribor3m"]


@pytest.mark.docker
def test_automl_image_without_key_is_401(service):
    response = score(service, key=None)

    assert response.status_code == 401


@pytest.mark.docker
def test_automl_image_wrong_key_is_401(service):
    response = score(service, key="not-a-key-of-this-service")

    assert response.status_code == 401


@pytest.mark.docker
@pytest.mark.parametrize("which", ["primary", "secondary"])
def test_automl_image_scores_with_key(service, which):
    response = score(service, key=getattr(service, which))

    assert response.status_code == 200, response.text[:300]
    assert response.json() == {"Results": ["yes", "no"]}


@pytest.mark.docker
def test_automl_image_predict_proba(service):
    response = score(service, key=service.primary, method="predict_proba")

    probabilities = response.json()["Results"]
    assert response.status_code == 200, response.text[:300]
    assert len(probabilities) == 2
    assert probabilities[0][1] > 0.5 > probabilities[1][1]


@pytest.mark.docker
def test_automl_image_python_and_user(service):
    result = subprocess.run(
        ["docker", "exec", service.container, "python3", "-c",
         "import os, sys, numpy, sklearn; print('%d.%d' % sys.version_info[:2], os.getuid(), numpy.__version__, sklearn.__version__)"],
        capture_output=True, text=True, timeout=60,
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["3.9", "10001", "1.23.5", "1.5.1"]


@pytest.mark.docker
def test_automl_image_has_healthcheck(service):
    result = subprocess.run(["docker", "image", "inspect", IMAGE, "--format", "{{json .Config.Healthcheck}}"],
                            capture_output=True, text=True, timeout=60)

    healthcheck = json.loads(result.stdout)
    assert healthcheck["Test"][0] == "CMD"
    assert "urllib.request.urlopen" in healthcheck["Test"][-1]


@pytest.mark.docker
def test_automl_image_passes_contract_suite(service):
    env = {
        **os.environ,
        "LAB_CONTRACT_SCORING_URI": service.scoring_uri,
        "LAB_CONTRACT_KEY": service.primary,
        "LAB_CONTRACT_SECONDARY_KEY": service.secondary,
        "LAB_CONTRACT_PROFILE": "aci",
    }

    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(ROOT / "tests" / "contract")],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=CONTRACT_TIMEOUT_S,
    )

    assert result.returncode == 0, result.stdout[-4000:]
    assert " passed" in result.stdout


@pytest.mark.docker
def test_automl_build_rejects_other_python(model_dir, tmp_path):
    other = write_model_folder(tmp_path / "model", CONDA_ENV.replace("python=3.9.19", "python=3.10.11"))

    result = docker_build(other, IMAGE + "-python310")

    assert result.returncode != 0
    output = (result.stdout + result.stderr).decode("utf-8", "replace")
    assert "pins python 3.10, but the base image has Python 3.9" in output


def prepare() -> int:
    """Build the base image and download the wheels that the image tests need (network)."""
    import tempfile

    reason = engine_unavailable_reason() or build_base_image()
    if reason is None:
        with tempfile.TemporaryDirectory() as work_dir:
            reason = download_wheelhouse(Path(work_dir))
    if reason:
        print(f"prepare: {reason}; the AutoML image tests will skip", file=sys.stderr)
        return 1
    print(f"prepare: {BASE_IMAGE} and the wheels in {wheel_cache_folder()} are ready")
    return 0


if __name__ == "__main__":
    if sys.argv[1:] != ["--prepare"]:
        sys.exit(f"usage: {PREPARE_COMMAND}")
    sys.exit(prepare())
