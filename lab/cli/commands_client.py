"""`lab endpoint`, `lab benchmark` and `lab swagger`: consume a scoring URI, local or in Azure."""

from __future__ import annotations

import json
from pathlib import Path

import click
import requests

from lab import client as lab_client
from lab import service as lab_service
from lab.errors import DataError, EndpointError
from lab.loadtest import run_load_test

URI_HELP = "Scoring URI; default: the local service's."
KEY_HELP = "Key sent as 'Authorization: Bearer <key>' (env LAB_SCORING_KEY); default: the local service's primary key."


@click.command("endpoint")
@click.option("--uri", help=URI_HELP)
@click.option("--key", envvar="LAB_SCORING_KEY", help=KEY_HELP)
@click.option("--name", help="Local service name; default: the running service.")
@click.option("--records", "records_file", type=click.Path(exists=True, dir_okay=False),
              help="JSON file with a list of records to send; default: the exercise's two records.")
@click.option("--style", type=click.Choice(["auto", "v1", "v2"]), default="auto", show_default=True,
              help="Payload form: v1 {\"data\": [...]} or v2 {\"Inputs\": {\"data\": [...]}, \"GlobalParameters\": ...}; "
                   "auto reads it from the service's swagger.")
@click.option("--method", type=click.Choice(["predict", "predict_proba"]), default="predict", show_default=True,
              help="v2 only: GlobalParameters.method, class labels or class probabilities.")
@click.option("--body-file", default="data.json", show_default=True, type=click.Path(dir_okay=False),
              help="Where to write the request body, for `lab benchmark` (as endpoint.py writes data.json).")
@click.pass_obj
def endpoint_command(workspace, uri, key, name, records_file, style, method, body_file):
    """Post records to a scoring URI with the key and print the predictions.

    Sends the exercise's two records by default, keys in alphabetical order exactly as its
    endpoint.py does, and writes the request body to data.json.
    """
    uri, key = lab_service.resolve_uri_and_key(workspace, uri, key, name)
    records = None
    if records_file:
        try:
            records = json.loads(Path(records_file).read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise DataError(f"{records_file}: not valid JSON ({exc}); pass a JSON list of records") from None
        if isinstance(records, dict) and "data" in records:
            records = records["data"]
        if not isinstance(records, list):
            raise DataError(f"{records_file}: expected a JSON list of records or {{\"data\": [...]}}")
    result = lab_client.score_records(uri, key, records, style=style, body_path=Path(body_file), method=method)
    click.echo(f"POST {uri} -> HTTP {result.status} in {result.elapsed_ms:.1f} ms (request id {result.request_id})")
    if result.double_encoded:
        click.echo("note: the answer was a JSON string containing JSON (v1 AutoML scoring script); decoded it")
    click.echo(json.dumps(result.body))
    click.echo(f"predictions: {result.predictions}")
    click.echo(f"request body written to {body_file}")


@click.command("benchmark")
@click.option("--uri", help=URI_HELP)
@click.option("--key", envvar="LAB_SCORING_KEY", help=KEY_HELP)
@click.option("--name", help="Local service name; default: the running service.")
@click.option("-n", "--requests", "requests_total", default=10, show_default=True, type=click.IntRange(1),
              help="Number of requests to send (ab -n).")
@click.option("-c", "--concurrency", default=1, show_default=True, type=click.IntRange(1, 1024),
              help="Requests in flight at once (ab -c).")
@click.option("--body-file", default="data.json", show_default=True, type=click.Path(dir_okay=False),
              help="Request body to post (ab -p); written by `lab endpoint`.")
@click.option("--timeout", default=30.0, show_default=True, type=click.FloatRange(0.1),
              help="Seconds to wait for each answer before counting the request as failed.")
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
@click.pass_obj
def benchmark_command(workspace, uri, key, name, requests_total, concurrency, body_file, timeout, as_json):
    """Load-test a scoring URI like `ab -n N -c C -p data.json -T application/json -H 'Authorization: Bearer KEY'`.

    Reports requests per second, latency percentiles in milliseconds, and failed requests
    (errors and non-2xx answers).
    """
    body_path = Path(body_file)
    if not body_path.is_file():
        raise DataError(f"{body_path}: request body not found; run `lab endpoint` first to write it, or pass --body-file")
    uri, key = lab_service.resolve_uri_and_key(workspace, uri, key, name)
    from rich.progress import Progress

    with Progress(transient=True, disable=as_json) as progress:
        task = progress.add_task(f"POST {uri}", total=requests_total)
        result = run_load_test(
            uri, body_path.read_bytes(), key, requests_total, concurrency, timeout,
            on_progress=lambda done: progress.update(task, completed=done),
        )
    if as_json:
        click.echo(json.dumps(result.to_json(), indent=2))
    else:
        click.echo(print_load_test(uri, result))
    if result.failed == result.requests:
        raise EndpointError(
            f"all {result.requests} requests to {uri} failed ({result.errors}); check the key and the body in "
            f"{body_path} with `lab endpoint`"
        )


def print_load_test(uri: str, result) -> str:
    latency = result.latency_ms
    lines = [
        f"Server URI:            {uri}",
        f"Concurrency level:     {result.concurrency}",
        f"Complete requests:     {result.requests}",
        f"Failed requests:       {result.failed}" + (f" {result.errors}" if result.errors else ""),
        f"Time taken:            {result.duration_s:.3f} s",
        f"Requests per second:   {result.requests_per_s:.2f} [#/sec] (mean)",
        f"Latency (ms):          mean {latency['mean']:.1f}, p50 {latency['p50']:.1f}, p95 {latency['p95']:.1f}, "
        f"p99 {latency['p99']:.1f}, max {latency['max']:.1f}",
        f"Status codes:          {result.status_counts}",
    ]
    return "\n".join(lines)


@click.command("swagger")
@click.option("--uri", help="Swagger URI; default: the local service's.")
@click.option("--name", help="Local service name; default: the running service.")
@click.option("--output", "-o", default="swagger.json", show_default=True, type=click.Path(dir_okay=False),
              help="Where to save the swagger document.")
@click.option("--version", "spec_version", type=click.Choice(["2", "3"]), default="2", show_default=True,
              help="Swagger 2.0 or OpenAPI 3 (?version=3).")
@click.option("--serve", is_flag=True, help="Then serve swagger-ui for the document until Ctrl-C.")
@click.option("--ui-host", default="127.0.0.1", show_default=True, help="Address swagger-ui binds with --serve.")
@click.option("--ui-port", default=8000, show_default=True, type=click.IntRange(0, 65535),
              help="Port of swagger-ui with --serve (0 picks a free port).")
@click.pass_obj
def swagger_command(workspace, uri, name, output, spec_version, serve, ui_host, ui_port):
    """Download the service's swagger.json and list its input columns; --serve opens swagger-ui for it.

    swagger-ui's "Try it out" calls the service from the browser, so the service must allow the
    UI's origin: deploy it with `--cors-origins http://127.0.0.1:8000` (the default UI address).
    """
    if uri is None:
        uri = lab_service.get_service(workspace, name).swagger_uri
    try:
        response = requests.get(uri, params={"version": spec_version} if spec_version != "2" else None, timeout=30)
    except requests.RequestException as exc:
        raise EndpointError(f"cannot reach swagger URI {uri} ({exc.__class__.__name__}); is the service running?") from None
    if response.status_code != 200:
        raise EndpointError(f"{uri} returned HTTP {response.status_code}: {response.text[:200]}")
    document = response.json()
    from lab.workspace import atomic_write_json

    atomic_write_json(Path(output), document)
    columns = swagger_input_columns(document)
    click.echo(f"saved {uri} to {output}; {len(columns)} input columns: {', '.join(columns)}")
    if serve:
        serve_swagger_ui(uri, ui_host, ui_port)


def serve_swagger_ui(swagger_uri: str, host: str, port: int) -> None:
    from local_scoring.swagger_ui import SwaggerUIServer, cors_allows

    server = SwaggerUIServer(swagger_uri, host, port, title=swagger_uri)
    scoring_uri = swagger_uri.partition("?")[0].rsplit("/", 1)[0] + "/score"
    click.echo(f"swagger-ui for {swagger_uri} at {server.url} (Ctrl-C stops it)")
    click.echo("  Authorize with the value 'Bearer <key>' (`KEY=$(lab keys show primary --raw)` captures it; --raw writes only into a pipe or variable)")
    if not cors_allows(scoring_uri, server.origin):
        click.echo(f"  warning: {scoring_uri} does not allow origin {server.origin} by CORS, so 'Try it out' fails; "
                   f"redeploy with `lab deploy --cors-origins {server.origin}`", err=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        click.echo("swagger-ui stopped")
    finally:
        server.httpd.server_close()


def swagger_input_columns(document: dict) -> list[str]:
    """Return the column names of the ``data`` records in a Swagger 2.0 or OpenAPI 3 document."""
    definitions = document.get("definitions") or document.get("components", {}).get("schemas", {})
    service_input = definitions.get("ServiceInput", {})
    data = service_input.get("properties", {}).get("data", {})
    if not data and "Inputs" in service_input.get("properties", {}):
        data = service_input["properties"]["Inputs"].get("properties", {}).get("data", {})
    return list(data.get("items", {}).get("properties", {}).keys())


def register(cli: click.Group) -> None:
    cli.add_command(endpoint_command)
    cli.add_command(benchmark_command)
    cli.add_command(swagger_command)
