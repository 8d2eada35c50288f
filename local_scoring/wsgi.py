"""The WSGI application gunicorn serves: the inference server's Flask app behind the front.

The inference server reads its settings (entry script, model folder, timeouts) from environment
variables at import time, so ``local_scoring.process`` sets them before gunicorn imports this.
The front reads LAB_KEYS_FILE, LAB_REQUEST_LOG, LAB_MAX_BODY_BYTES and AML_CORS_ORIGINS.
"""

import logging
import sys

from azureml_inference_server_http.server.create_app import create

from local_scoring.front import Front, FrontConfig

# The inference server configures only its own "azmlinfsrv" logger; without a handler here the
# entry module's tracebacks (logged under the request id) would lose their time and level.
_handler = logging.StreamHandler(sys.stderr)
_handler.setFormatter(logging.Formatter("%(asctime)s %(levelname).1s [%(process)d] %(name)s - %(message)s"))
_service_logger = logging.getLogger("local_scoring")
_service_logger.addHandler(_handler)
_service_logger.setLevel(logging.INFO)
_service_logger.propagate = False

app = Front(create(), FrontConfig.from_env())
