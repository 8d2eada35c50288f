"""The local scoring service: the AzureML inference server behind a key-checking front.

- ``entry``: what a generated entry script imports (input validation, model loading).
- ``front``: the WSGI middleware that checks keys, limits body size and writes the request log.
- ``wsgi``: the application gunicorn serves, the inference server's Flask app behind the front.
- ``process``: starting and stopping the service as local processes.
- ``docker_target``: the same service as a container of the project's image (``Dockerfile``).
- ``keys``: primary and secondary keys, stored with owner-only permissions.
- ``swagger_ui``: swagger-ui for a service's swagger document, served from the swagger-ui-bundle package.
"""
