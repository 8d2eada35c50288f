"""The scoring image's own programs: the container entry point and the swagger-ui server.

The shell and Python scripts beside them build the image's inputs: the base image without a
registry, the pinned requirements and the offline wheelhouse.
"""
