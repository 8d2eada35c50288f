"""`lab cloud`: the exercise in Azure ML with SDK v1, each step idempotent and with `--dry-run`.

Nothing from ``cloud`` or ``azureml`` is imported at module level: `lab` must start without the
cloud extra, and a dry run needs no SDK at all.
"""

from __future__ import annotations

import contextlib
import functools
import json
from dataclasses import dataclass
from pathlib import Path

import click

AUTH_CHOICES = ("interactive", "cli", "service-principal")
DEFAULT_SERVICE = "bankmarketing-service"
DEFAULT_CLUSTER = "automl-cluster"
DEFAULT_MODEL = "bankmarketing-automl"
# The project is installed from its clone, not from PyPI, so the hint installs the extra from there.
SDK_MISSING = (
    "the Azure ML SDK is not installed; install the cloud extra from the project's clone: pip install -e '.[cloud]'"
)


@dataclass
class CloudContext:
    """Options of the `lab cloud` group, shared by its commands."""

    local_workspace: object
    config_path: str | None
    auth_method: str

    def session(self):
        """Read config.json and return a ``CloudSession``; Azure is contacted on first use."""
        _require_sdk()
        from cloud.workspace import CloudSession, read_config

        return CloudSession(read_config(self.config_path), self.auth_method)

    def auth_warnings(self) -> list[str]:
        """List, as dry-run warnings, the sign-in settings that would stop a real run."""
        from cloud.workspace import missing_service_principal_variables

        if self.auth_method != "service-principal":
            return []
        missing = missing_service_principal_variables()
        if not missing:
            return []
        return [f"--auth service-principal needs {', '.join(missing)} in the environment; a real run stops here"]

    def workspace_line(self) -> str:
        """Describe the workspace from config.json for a dry run, or why it cannot be found."""
        from cloud.errors import CloudError
        from cloud.workspace import read_config

        try:
            return read_config(self.config_path).describe()
        except CloudError as exc:
            return f"workspace: not resolved, a real run stops here: {exc}"


def _require_sdk() -> None:
    from cloud.errors import CloudError

    try:
        import azureml.core  # noqa: F401
    except ModuleNotFoundError:
        raise CloudError(SDK_MISSING) from None


def _print_plan(ctx_obj: CloudContext, changes, warnings=()) -> None:
    from cloud.plan import render_plan

    all_warnings = [*warnings, *ctx_obj.auth_warnings()]
    for line in render_plan(changes, ctx_obj.workspace_line(), ctx_obj.auth_method, all_warnings):
        click.echo(line)


def dry_run_option(command):
    return click.option(
        "--dry-run", is_flag=True,
        help="Print what the command would create, change or read, with sizes and cost settings, without calling Azure."
    )(command)


def compute_options(command):
    options = [
        click.option("--cluster", default=DEFAULT_CLUSTER, show_default=True, help="AmlCompute cluster name."),
        click.option("--vm-size", default="STANDARD_D2_V2", show_default=True, help="VM size of the cluster nodes."),
        click.option("--min-nodes", default=0, show_default=True, type=int, help="Nodes kept even when idle."),
        click.option("--max-nodes", default=4, show_default=True, type=int, help="Maximum nodes of the cluster."),
        click.option("--idle-seconds", default=1800, show_default=True, type=int,
                     help="Seconds a node stays idle before it is released."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def dataset_options(command):
    from lab.data import DEFAULT_DATASET_NAME, OFFICIAL_URL

    command = click.option("--dataset", "dataset_name", default=DEFAULT_DATASET_NAME, show_default=True,
                           help="Registered dataset name.")(command)
    return click.option("--url", default=OFFICIAL_URL, show_default=True, help="URL of the training CSV.")(command)


def automl_options(command=None, *, in_pipeline: bool = False):
    """Add the AutoML options; ``in_pipeline`` leaves out --experiment and --model-name.

    An AutoMLStep runs in the pipeline's experiment and registers no model, so these two options
    would have no effect on `lab cloud pipeline create`.
    """
    if command is None:
        return functools.partial(automl_options, in_pipeline=in_pipeline)
    options = [
        click.option("--label", default="y", show_default=True, help="Label column, the column to predict."),
        click.option("--primary-metric", default="AUC_weighted", show_default=True,
                     help="Metric AutoML optimizes: accuracy, AUC_weighted, average_precision_score_weighted, "
                          "norm_macro_recall or precision_score_weighted."),
        # --timeout is in minutes, as in `lab train`; --timeout-minutes is the older name of the same option.
        click.option("--timeout", "--timeout-minutes", "timeout_minutes", default=20, show_default=True, type=int,
                     help="Experiment timeout in minutes (experiment_timeout_minutes), 15 to 525600. "
                          "--timeout-minutes is an alias."),
        click.option("--max-concurrent", default=5, show_default=True, type=int,
                     help="Child runs at a time. Each cluster node runs one, so runs beyond --max-nodes wait."),
        click.option("--early-stopping/--no-early-stopping", default=True, show_default=True,
                     help="Stop the search when the score stops improving."),
        click.option("--featurization", type=click.Choice(["auto", "off"]), default="auto", show_default=True,
                     help="Featurization of the input columns (imputation, encoding)."),
        click.option("--cv", "n_cross_validations", type=int, default=None,
                     help="Cross-validation folds; default: AutoML chooses the validation."),
    ]
    if not in_pipeline:
        options.insert(0, click.option("--experiment", default="automl-bankmarketing", show_default=True,
                                       help="Experiment that the AutoML run is submitted to."))
        options.append(click.option("--model-name", default=DEFAULT_MODEL, show_default=True,
                                    help="Name to register the best model as."))
    for option in reversed(options):
        command = option(command)
    return command


def service_option(command):
    return click.option("--service", default=DEFAULT_SERVICE, show_default=True, help="ACI web service name.")(command)


def _compute_settings(kwargs):
    from cloud.settings import ComputeSettings

    return ComputeSettings(
        name=kwargs["cluster"], vm_size=kwargs["vm_size"], min_nodes=kwargs["min_nodes"],
        max_nodes=kwargs["max_nodes"], idle_seconds_before_scaledown=kwargs["idle_seconds"],
    )


def _dataset_settings(kwargs):
    from cloud.settings import DatasetSettings

    return DatasetSettings(name=kwargs["dataset_name"], url=kwargs["url"])


def _automl_settings(kwargs):
    from cloud.settings import AutoMLSettings

    # `pipeline create` has no --experiment or --model-name, so the settings' defaults stand in there.
    names = {"experiment_name": kwargs.get("experiment"), "model_name": kwargs.get("model_name")}
    return AutoMLSettings(
        **{key: value for key, value in names.items() if value is not None},
        label_column_name=kwargs["label"],
        primary_metric=kwargs["primary_metric"], experiment_timeout_minutes=kwargs["timeout_minutes"],
        max_concurrent_iterations=kwargs["max_concurrent"], enable_early_stopping=kwargs["early_stopping"],
        featurization=kwargs["featurization"], n_cross_validations=kwargs["n_cross_validations"],
    )


def _concurrency_warnings(automl_settings, compute_settings) -> list[str]:
    from cloud.settings import concurrency_warning

    warning = concurrency_warning(automl_settings, compute_settings)
    return [warning] if warning else []


def _echo_warnings(warnings) -> None:
    for warning in warnings:
        click.echo(f"warning: {warning}", err=True)


def _check_model_ref(model_ref: str) -> None:
    """Reject a malformed NAME or NAME:VERSION before a dry run prints a plan for it."""
    from cloud.models import parse_model_ref

    parse_model_ref(model_ref)


def _with_cloud_context(command):
    """Pass the group's ``CloudContext`` as the first argument."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        return command(click.get_current_context().find_object(CloudContext), *args, **kwargs)

    return wrapper


@click.group("cloud")
@click.option("--config", "config_path", envvar="LAB_AZURE_CONFIG", type=click.Path(),
              help="config.json of the Azure ML workspace, or a folder to search upwards from "
                   "(env LAB_AZURE_CONFIG); default: the current folder.")
@click.option("--auth", "auth_method", envvar="LAB_AZURE_AUTH", type=click.Choice(AUTH_CHOICES), default="cli",
              show_default=True,
              help="Sign-in: interactive (browser), cli (`az login`), or service-principal "
                   "(AZURE_TENANT_ID, AZURE_CLIENT_ID, AZURE_CLIENT_SECRET).")
@click.pass_context
def cloud_group(ctx: click.Context, config_path, auth_method):
    """Run the exercise in an Azure ML workspace (SDK v1): compute, dataset, AutoML, ACI deployment,
    pipelines, download and cleanup.

    Every command reuses what already exists, and --dry-run prints what it would create or change
    without calling Azure. Azure ML SDK v1 support ended on 2026-06-30; see docs/cloud.md.
    """
    ctx.obj = CloudContext(ctx.obj, config_path, auth_method)


# -- compute and data -----------------------------------------------------------------------------


@cloud_group.command("compute")
@compute_options
@dry_run_option
@_with_cloud_context
def compute_command(context: CloudContext, dry_run, **kwargs):
    """Get or create the AutoML compute cluster."""
    from cloud import compute

    settings = _compute_settings(kwargs)
    if dry_run:
        _print_plan(context, [compute.plan_cluster(settings)])
        return
    cluster = compute.get_or_create_cluster(context.session().workspace, settings)
    click.echo(f"cluster {cluster.name} ready ({getattr(cluster, 'vm_size', settings.vm_size)})")


@cloud_group.command("dataset")
@dataset_options
@dry_run_option
@_with_cloud_context
def dataset_command(context: CloudContext, dry_run, **kwargs):
    """Register the training CSV from its URL as a tabular dataset, or reuse the matching version."""
    from cloud import dataset

    settings = _dataset_settings(kwargs)
    if dry_run:
        _print_plan(context, [dataset.plan_dataset(settings)])
        return
    registered, reused = dataset.register_or_reuse(context.session().workspace, settings)
    click.echo(f"{'reusing' if reused else 'registered'} dataset {registered.name} version {registered.version}")


# -- AutoML ---------------------------------------------------------------------------------------


@cloud_group.command("automl")
@compute_options
@dataset_options
@automl_options
@click.option("--poll-seconds", default=30, show_default=True, type=click.IntRange(5),
              help="Seconds between progress checks.")
@dry_run_option
@_with_cloud_context
def automl_command(context: CloudContext, dry_run, poll_seconds, **kwargs):
    """Run AutoML on the cluster, print progress and the leaderboard, and register the best model.

    Creates or reuses the cluster and the dataset first. A run with the same settings, dataset
    version and cluster that completed or is running is followed again instead of resubmitted.
    """
    from cloud import automl, compute, dataset
    from cloud.progress import leaderboard

    compute_settings = _compute_settings(kwargs)
    dataset_settings = _dataset_settings(kwargs)
    automl_settings = _automl_settings(kwargs)
    warnings = _concurrency_warnings(automl_settings, compute_settings)
    if dry_run:
        changes = [compute.plan_cluster(compute_settings), dataset.plan_dataset(dataset_settings)]
        changes += automl.plan_automl(automl_settings, compute_settings, dataset_settings)
        _print_plan(context, changes, warnings)
        return
    _echo_warnings(warnings)

    workspace = context.session().workspace
    cluster = compute.get_or_create_cluster(workspace, compute_settings)
    registered, _ = dataset.register_or_reuse(workspace, dataset_settings)
    run, reused = automl.submit_or_reuse(workspace, automl_settings, registered, cluster)
    click.echo(f"{'following existing' if reused else 'submitted'} AutoML run {run.id}")
    click.echo(f"  studio: {run.get_portal_url()}")
    with _keeps_running_on_interrupt(f"AutoML run {run.id}", "rerun the same `lab cloud automl` to follow it again"):
        records = automl.follow_run(run, automl_settings.primary_metric, click.echo, poll_seconds)

    click.echo(f"leaderboard ({automl_settings.primary_metric}):")
    for rank, record in enumerate(leaderboard(records), start=1):
        click.echo(f"  {rank:>2}. {record.score:.4f}  iteration {record.iteration:<3} {record.pipeline}")
    model = automl.register_best_model(run, automl_settings)
    click.echo(f"best model registered as {model.name}:{model.version}")


@contextlib.contextmanager
def _keeps_running_on_interrupt(what: str, how_to_resume: str):
    """Turn Ctrl-C while following a run into a message saying that the run goes on in Azure."""
    from lab.errors import Interrupted

    try:
        yield
    except KeyboardInterrupt:
        raise Interrupted(
            f"stopped following; {what} keeps running in Azure (and on the cluster's bill): {how_to_resume}, "
            "or cancel it in Azure ML studio"
        ) from None


# -- deployment -----------------------------------------------------------------------------------


@cloud_group.command("deploy")
@click.option("--model", "model_ref", default=DEFAULT_MODEL, show_default=True,
              help="Registered model, NAME or NAME:VERSION (latest version without one).")
@service_option
@click.option("--cpu-cores", default=1.0, show_default=True, type=float, help="vCPUs of the container.")
@click.option("--memory-gb", default=1.0, show_default=True, type=float, help="Memory of the container in GB.")
@click.option("--app-insights/--no-app-insights", default=True, show_default=True,
              help="Send request telemetry and print() output to Application Insights.")
@click.option("--replace", is_flag=True,
              help="Redeploy the service when it serves another model or is in a failed state.")
@dry_run_option
@_with_cloud_context
def deploy_command(context: CloudContext, model_ref, service, cpu_cores, memory_gb, app_insights, replace, dry_run):
    """Deploy a registered AutoML model to ACI with key auth, using AutoML's scoring file and environment."""
    from cloud import deploy
    from cloud.settings import DeploySettings

    settings = DeploySettings(service_name=service, cpu_cores=cpu_cores, memory_gb=memory_gb,
                              enable_app_insights=app_insights)
    _check_model_ref(model_ref)
    if dry_run:
        _print_plan(context, [deploy.plan_deploy(settings, model_ref, replace)])
        return
    from cloud.models import get_model

    workspace = context.session().workspace
    model = get_model(workspace, model_ref)
    service_object, reused = deploy.deploy_model(workspace, model, settings, replace)
    click.echo(f"{'reusing' if reused else 'deployed'} {model.name}:{model.version}")
    _echo_service(deploy.describe_service(service_object))


def _echo_service(info) -> None:
    from cloud.deploy import service_lines

    for line in service_lines(info):
        click.echo(line)
    click.echo(f"  consume:   lab cloud endpoint --service {info.name}   (or lab endpoint --uri {info.scoring_uri} --key KEY)")
    click.echo(f"  benchmark: lab cloud benchmark --service {info.name}  (or lab benchmark --uri {info.scoring_uri} --key KEY)")


@cloud_group.command("service")
@service_option
@dry_run_option
@_with_cloud_context
def service_command(context: CloudContext, service, dry_run):
    """Show a service's state, URIs and masked keys."""
    from cloud import deploy
    from cloud.plan import PlannedChange

    if dry_run:
        _print_plan(context, [PlannedChange("read state and keys of", "ACI web service", service, {}, "none")])
        return

    _echo_service(deploy.describe_service(deploy.require_service(context.session().workspace, service)))


@cloud_group.command("app-insights")
@service_option
@dry_run_option
@_with_cloud_context
def app_insights_command(context: CloudContext, service, dry_run):
    """Enable Application Insights on an existing service."""
    from cloud import deploy
    from cloud.plan import PlannedChange

    if dry_run:
        change = PlannedChange("update", "ACI web service", service, {"enable_app_insights": True},
                               deploy.APP_INSIGHTS_COST)
        _print_plan(context, [change])
        return
    _, changed = deploy.enable_app_insights(context.session().workspace, service)
    click.echo(f"Application Insights {'enabled' if changed else 'was already enabled'} on service {service}")


@cloud_group.command("logs")
@service_option
@click.option("--tail", type=click.IntRange(1), help="Print only the last N lines.")
@dry_run_option
@_with_cloud_context
def logs_command(context: CloudContext, service, tail, dry_run):
    """Print the service's container logs."""
    from cloud.plan import PlannedChange

    if dry_run:
        _print_plan(context, [PlannedChange("read logs of", "ACI web service", service, {"tail": tail or "all"}, "none")])
        return
    from cloud import deploy

    click.echo(deploy.service_logs(context.session().workspace, service, tail))


@cloud_group.command("swagger")
@service_option
@click.option("--output", "-o", default="swagger.json", show_default=True, type=click.Path(dir_okay=False),
              help="Where to write swagger.json.")
@dry_run_option
@_with_cloud_context
def swagger_command(context: CloudContext, service, output, dry_run):
    """Download the service's swagger.json."""
    from cloud.plan import PlannedChange

    if dry_run:
        _print_plan(context, [PlannedChange("download swagger of", "ACI web service", service, {"output": output}, "none")])
        return
    from cloud import deploy

    service_object = deploy.require_service(context.session().workspace, service)
    key = _primary_key(service_object)
    path = deploy.download_swagger(service_object.swagger_uri, Path(output), key)
    click.echo(f"swagger.json of {service} written to {path}; serve it with `lab swagger --uri {service_object.swagger_uri}`")


def _primary_key(service_object) -> str | None:
    from cloud.errors import cloud_error

    if not getattr(service_object, "auth_enabled", False):
        return None
    try:
        return service_object.get_keys()[0]
    except Exception as exc:  # noqa: BLE001
        raise cloud_error(f"reading the keys of service {service_object.name}", exc)


# -- consume and benchmark ------------------------------------------------------------------------


@cloud_group.command("endpoint")
@service_option
@click.option("--style", type=click.Choice(["v1", "v2"]), default="v1", show_default=True,
              help="Payload form; AutoML's default scoring file is v1.")
@click.option("--body-file", default="data.json", show_default=True, type=click.Path(dir_okay=False),
              help="Where to write the request body, for `lab cloud benchmark`.")
@dry_run_option
@_with_cloud_context
def endpoint_command(context: CloudContext, service, style, body_file, dry_run):
    """Score the exercise's two records on the service, with its primary key fetched from Azure."""
    from cloud.plan import PlannedChange

    if dry_run:
        _print_plan(context, [PlannedChange("call", "ACI web service", service,
                                            {"request": "POST /score, 2 records", "style": style}, "none")])
        return
    from cloud import deploy
    from lab import client as lab_client

    service_object = deploy.require_service(context.session().workspace, service)
    uri = service_object.scoring_uri
    result = lab_client.score_records(uri, _primary_key(service_object), style=style, body_path=Path(body_file))
    click.echo(f"POST {uri} -> HTTP {result.status} in {result.elapsed_ms:.1f} ms (request id {result.request_id})")
    click.echo(json.dumps(result.body))
    click.echo(f"predictions: {result.predictions}")
    click.echo(f"request body written to {body_file}")


@cloud_group.command("benchmark")
@service_option
@click.option("-n", "--requests", "requests_total", default=10, show_default=True, type=click.IntRange(1),
              help="Number of requests to send (ab -n).")
@click.option("-c", "--concurrency", default=1, show_default=True, type=click.IntRange(1, 1024),
              help="Requests in flight at once (ab -c).")
@click.option("--body-file", default="data.json", show_default=True, type=click.Path(dir_okay=False),
              help="Request body to post; written by `lab cloud endpoint`.")
@click.option("--timeout", default=30.0, show_default=True, type=click.FloatRange(0.1),
              help="Seconds to wait for each response before counting the request as failed.")
@dry_run_option
@_with_cloud_context
def benchmark_command(context: CloudContext, service, requests_total, concurrency, body_file, timeout, dry_run):
    """Load-test the service like `ab -n N -c C -p data.json`, with its primary key fetched from Azure."""
    from cloud.plan import PlannedChange
    from lab.errors import DataError

    if dry_run:
        _print_plan(context, [PlannedChange("load-test", "ACI web service", service,
                                            {"requests": requests_total, "concurrency": concurrency}, "none")])
        return
    body_path = Path(body_file)
    if not body_path.is_file():
        raise DataError(f"{body_path}: request body not found; run `lab cloud endpoint` first, or pass --body-file")
    from cloud import deploy
    from lab.cli.commands_client import print_load_test
    from lab.loadtest import run_load_test

    service_object = deploy.require_service(context.session().workspace, service)
    uri = service_object.scoring_uri
    result = run_load_test(uri, body_path.read_bytes(), _primary_key(service_object), requests_total, concurrency,
                           timeout)
    click.echo(print_load_test(uri, result))


# -- download and cleanup -------------------------------------------------------------------------


@cloud_group.command("download")
@click.option("--model", "model_ref", default=DEFAULT_MODEL, show_default=True,
              help="Registered model, NAME or NAME:VERSION (latest version without one).")
@click.option("--to", "target", type=click.Path(file_okay=False),
              help="Write the folder here instead of registering it in the local workspace.")
@click.option("--name", "local_name", help="Local model name; default: the Azure model's name.")
@click.option("--overwrite", is_flag=True, help="Replace a --to folder that contains another model; needs --to.")
@dry_run_option
@click.pass_context
def download_command(ctx: click.Context, model_ref, target, local_name, overwrite, dry_run):
    """Download a registered AutoML model with its scoring file and conda specification.

    The folder (model.pkl, score.py, conda_env.yml, Dockerfile, manifest.json) is registered as a
    local model version, or written to --to. The model needs azureml-train-automl-runtime, which
    has no Python 3.11 build, so it is served from an image built from its own conda_env.yml.
    """
    context: CloudContext = ctx.find_object(CloudContext)
    from cloud import download

    if overwrite and not target:
        raise click.UsageError(
            "--overwrite works only with --to: a download into the local workspace adds a new model version "
            "and replaces nothing"
        )
    _check_model_ref(model_ref)
    where = target or f"local workspace {getattr(context.local_workspace, 'root', '.lab')}"
    if dry_run:
        _print_plan(context, [download.plan_download(model_ref, where)])
        return
    from cloud.models import get_model

    model = get_model(context.session().workspace, model_ref)
    artifacts = download.RegisteredModelArtifacts(model)
    if target:
        manifest = download.download_to_folder(artifacts, Path(target), overwrite)
        click.echo(f"model {model.name}:{model.version} laid out in {target} (Python {manifest['python']})")
    else:
        asset = download.download_to_workspace(artifacts, context.local_workspace, local_name)
        click.echo(f"model {model.name}:{model.version} registered locally as {asset.ref} in {asset.path}")
    click.echo("  build its image from conda_env.yml (see the Dockerfile beside it); it does not load on Python 3.11")


@cloud_group.command("cleanup")
@service_option
@click.option("--cluster", default=DEFAULT_CLUSTER, show_default=True, help="Cluster to scale to zero nodes.")
@dry_run_option
@_with_cloud_context
def cleanup_command(context: CloudContext, service, cluster, dry_run):
    """Delete the web service, scale the cluster to zero, and list what still costs money."""
    from cloud import cleanup

    if dry_run:
        _print_plan(context, cleanup.plan_cleanup(service, cluster))
        return
    for line in cleanup.clean_up(context.session().workspace, service, cluster):
        click.echo(line)


# -- pipelines ------------------------------------------------------------------------------------


def pipeline_options(experiment_help: str | None):
    """Options naming the pipeline; ``experiment_help=None`` leaves out --pipeline-experiment."""

    def decorate(command):
        options = [
            click.option("--published-name", default="Bankmarketing Train", show_default=True,
                         help="Name of the published pipeline."),
            click.option("--version", "published_version", default="1.0", show_default=True,
                         help="Version of the published pipeline."),
        ]
        if experiment_help:
            options.insert(0, click.option("--pipeline-experiment", default="pipeline-bankmarketing",
                                           show_default=True, help=experiment_help))
        for option in reversed(options):
            command = option(command)
        return command

    return decorate


def _pipeline_settings(kwargs, trigger_experiment="pipeline-rest-endpoint", parameters=None):
    from cloud.settings import PipelineSettings

    return PipelineSettings(
        experiment_name=kwargs.get("pipeline_experiment", "pipeline-bankmarketing"),
        published_name=kwargs["published_name"],
        version=kwargs["published_version"], trigger_experiment=trigger_experiment,
        parameter_assignments=parameters or {},
    )


@cloud_group.group("pipeline")
def pipeline_group():
    """Build, publish, trigger (REST) and follow the exercise's training pipeline."""


@pipeline_group.command("create")
@compute_options
@dataset_options
@automl_options(in_pipeline=True)
@pipeline_options("Experiment that the pipeline run is submitted to.")
@dry_run_option
@_with_cloud_context
def pipeline_create_command(context: CloudContext, dry_run, **kwargs):
    """Build the pipeline (AutoMLStep automl_module) and submit a run, or reuse a matching run."""
    from cloud import compute, dataset, pipeline

    compute_settings = _compute_settings(kwargs)
    dataset_settings = _dataset_settings(kwargs)
    automl_settings = _automl_settings(kwargs)
    settings = _pipeline_settings(kwargs)
    warnings = _concurrency_warnings(automl_settings, compute_settings)
    if dry_run:
        _print_plan(context, [
            compute.plan_cluster(compute_settings),
            dataset.plan_dataset(dataset_settings),
            pipeline.plan_create(settings, automl_settings, compute_settings, dataset_settings),
        ], warnings)
        return
    _echo_warnings(warnings)
    workspace = context.session().workspace
    cluster = compute.get_or_create_cluster(workspace, compute_settings)
    registered, _ = dataset.register_or_reuse(workspace, dataset_settings)
    run, reused = pipeline.create_and_submit(workspace, settings, automl_settings, registered, cluster)
    click.echo(f"{'reusing' if reused else 'submitted'} pipeline run {run.id} in experiment {settings.experiment_name}")
    click.echo(f"  follow it: lab cloud pipeline status --run-id {run.id} --experiment {settings.experiment_name}")


@pipeline_group.command("publish")
@pipeline_options("Experiment of the pipeline run to publish, the one `create` submitted to.")
@click.option("--run-id", help="Pipeline run to publish; default: the newest run `create` submitted.")
@dry_run_option
@_with_cloud_context
def pipeline_publish_command(context: CloudContext, run_id, dry_run, **kwargs):
    """Publish the pipeline behind a REST endpoint, or reuse the published one of the same name and version."""
    from cloud import pipeline
    from cloud.settings import check_run_id

    settings = _pipeline_settings(kwargs)
    if run_id is not None:
        check_run_id(run_id)
    if dry_run:
        _print_plan(context, [pipeline.plan_publish(settings)])
        return
    published, reused = pipeline.publish(context.session().workspace, settings, run_id)
    click.echo(f"{'reusing' if reused else 'published'} pipeline {published.name!r} version {published.version}")
    click.echo(f"  id        {published.id}")
    click.echo(f"  endpoint  {published.endpoint}")


def _parse_parameters(values) -> dict:
    parameters = {}
    for item in values:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise click.BadParameter(f"{item!r}; use NAME=VALUE", param_hint="--param")
        parameters[name] = value
    return parameters


@pipeline_group.command("trigger")
@pipeline_options(None)
@click.option("--experiment", "trigger_experiment", default="pipeline-rest-endpoint", show_default=True,
              help="Experiment that the new run is submitted to (ExperimentName in the REST body).")
@click.option("--param", "params", multiple=True, help="ParameterAssignments entry NAME=VALUE (repeatable).")
@click.option("--follow/--no-follow", default=True, show_default=True, help="Follow the run's status until it ends.")
@dry_run_option
@_with_cloud_context
def pipeline_trigger_command(context: CloudContext, trigger_experiment, params, follow, dry_run, **kwargs):
    """Start a run of the published pipeline over REST with an AAD bearer token.

    Each call starts a new run; it is the one command that is not idempotent by design.
    """
    from cloud import pipeline

    settings = _pipeline_settings(kwargs, trigger_experiment, _parse_parameters(params))
    if dry_run:
        _print_plan(context, [pipeline.plan_trigger(settings)])
        return
    session = context.session()
    run_id = pipeline.trigger(session.workspace, session.auth_header(), settings)
    click.echo(f"pipeline run {run_id} submitted to experiment {settings.trigger_experiment}")
    if follow:
        resume = (
            f"run `lab cloud pipeline status --run-id {run_id} --experiment {settings.trigger_experiment} --follow` "
            "to follow it again"
        )
        with _keeps_running_on_interrupt(f"pipeline run {run_id}", resume):
            pipeline.follow_status(session.workspace, settings.trigger_experiment, run_id, click.echo)


@pipeline_group.command("status")
@click.option("--run-id", required=True, help="Pipeline run id (printed by `trigger` or `create`).")
@click.option("--experiment", default="pipeline-rest-endpoint", show_default=True, help="Experiment of the run.")
@click.option("--follow/--no-follow", default=False, show_default=True, help="Follow the run until it ends.")
@dry_run_option
@_with_cloud_context
def pipeline_status_command(context: CloudContext, run_id, experiment, follow, dry_run):
    """Print the status of a pipeline run and its steps."""
    from cloud.plan import PlannedChange
    from cloud.settings import check_experiment_name, check_run_id

    check_run_id(run_id)
    check_experiment_name(experiment)
    if dry_run:
        _print_plan(context, [PlannedChange("read status of", "pipeline run", run_id, {"experiment": experiment}, "none")])
        return
    from cloud import pipeline

    resume = f"run `lab cloud pipeline status --run-id {run_id} --follow` to follow it again"
    with _keeps_running_on_interrupt(f"pipeline run {run_id}", resume):
        pipeline.follow_status(context.session().workspace, experiment, run_id, click.echo, follow=follow)


def register(cli: click.Group) -> None:
    cli.add_command(cloud_group)
