"""The WSGI application gunicorn serves: the inference server's Flask app behind the front.

The inference server reads its settings (entry script, model folder, timeouts) from environment
variables at import time, so ``local_scoring.process`` sets them before gunicorn imports this.
"""

from azureml_inference_server_http.server.create_app import create

from local_scoring.front import Front, FrontConfig

app = Front(create(), FrontConfig.from_env())
