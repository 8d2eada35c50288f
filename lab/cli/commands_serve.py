"""`lab deploy`, `lab keys` and `lab logs`: the local scoring service."""

from __future__ import annotations

import json
import sys

import click

from lab import service as lab_service
from lab.loadtest import percentile
from local_scoring.keys import mask, regenerate
from local_scoring.process import DEFAULT_PORT, DEFAULT_SERVICE_NAME


@click.command("deploy")
@click.option("--model", "model_ref", help="Registered model NAME[:VERSION]; default: the newest model.")
@click.option("--name", default=DEFAULT_SERVICE_NAME, show_default=True, help="Service name.")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address the front binds; 0.0.0.0 exposes the service to the network.")
@click.option("--port", default=DEFAULT_PORT, show_default=True, type=click.IntRange(0, 65535),
              help="Port of the front (0 picks a free port).")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64),
              help="Inference server worker processes (WORKER_COUNT).")
@click.option("--threads-per-worker", default=1, show_default=True, type=click.IntRange(1, 64),
              help="BLAS/OpenMP threads of each worker (OMP_NUM_THREADS); 1 is fastest for small requests.")
@click.option("--worker-timeout", default=300, show_default=True, type=click.IntRange(1),
              help="Seconds a worker may spend on one request before gunicorn restarts it (WORKER_TIMEOUT).")
@click.option("--scoring-timeout", default=60_000, show_default=True, type=click.IntRange(1),
              help="Milliseconds run() may take before the server returns HTTP 500 (SCORING_TIMEOUT_MS).")
@click.option("--max-body-mb", default=100, show_default=True, type=click.IntRange(1),
              help="Largest request body in MB; larger ones get 413 (Azure's nginx allows 100 MB).")
@click.option("--max-rows", default=10_000, show_default=True, type=click.IntRange(1),
              help="Maximum records per request; larger batches get HTTP 400.")
@click.option("--cors-origins", help="Comma-separated origins allowed by CORS (AML_CORS_ORIGINS), e.g. for swagger-ui.")
@click.option("--payload-style", type=click.Choice(["v1", "v2"]), default="v1", show_default=True,
              help="Entry script style: v1 {\"data\": [...]} -> {\"result\": [...]}, or v2 "
                   "{\"Inputs\": {\"data\": [...]}, \"GlobalParameters\": {\"method\": ...}} -> {\"Results\": [...]}.")
@click.option("--double-encoded", is_flag=True,
              help="v1 only: respond with a JSON string that contains JSON, as Azure's v1 AutoML scripts do.")
@click.option("--target", type=click.Choice(["process", "docker"]), default="process", show_default=True,
              help="Run as local processes, or as a container through the Docker engine.")
@click.option("--stop", "stop_it", is_flag=True, help="Stop the service instead of starting it.")
@click.pass_obj
def deploy_command(workspace, model_ref, name, host, port, workers, threads_per_worker, worker_timeout, scoring_timeout,
                   max_body_mb, max_rows, cors_origins, payload_style, double_encoded, target, stop_it):
    """Start the scoring service for a registered model, as local processes.

    The real AzureML inference server runs a generated entry script behind a front that requires
    `Authorization: Bearer <key>` on /score. Keys are generated on the first deployment of a
    service name and kept on redeployment, like an ACI service update.
    """
    if stop_it:
        service, was_running = lab_service.stop(workspace, name)
        click.echo(f"service {service.name} stopped" if was_running else f"service {service.name} was not running")
        return
    click.echo(f"deploying {model_ref or 'the newest model'} as service {name} ...")
    service = lab_service.deploy(workspace, model_ref, {
        "name": name, "host": host, "port": port, "workers": workers, "threads_per_worker": threads_per_worker,
        "worker_timeout_s": worker_timeout,
        "scoring_timeout_ms": scoring_timeout, "max_body_bytes": max_body_mb * 1024 * 1024,
        "max_rows": max_rows, "cors_origins": cors_origins, "payload_style": payload_style,
        "double_encoded": double_encoded,
    }, target=target)
    print_service(service)
    print_compose_env(workspace, service.state["model"])


def print_compose_env(workspace, model_ref: str) -> None:
    """Write the .env that `docker compose up` reads, and say which model it serves."""
    path = lab_service.update_compose_env(workspace, model_ref)
    if path is not None:
        click.echo(f"docker compose: {path} serves {model_ref}")


def print_service(service) -> None:
    primary, secondary = service.get_keys()
    if service.state.get("target") == "docker":
        where = f"container {str(service.state.get('container_id') or '')[:12]}"
    else:
        where = f"pid {service.state['pid']}"
    click.echo(f"service {service.name} is healthy (model {service.state['model']}, {where})")
    click.echo(f"  scoring URI  {service.scoring_uri}")
    click.echo(f"  swagger URI  {service.swagger_uri}")
    settings = service.state.get("settings", {})
    style = settings.get("payload_style", "v1")
    click.echo(f"  payload      {style}{' (double-encoded answers)' if settings.get('double_encoded') else ''}, "
               f"at most {settings.get('max_rows', '?')} records per request")
    click.echo(f"  keys         primary {mask(primary)}, secondary {mask(secondary)} in {service.keys_file} (mode 0600)")
    click.echo("               `lab keys show` shows them masked; KEY=$(lab keys show primary --raw) captures one into a variable")
    click.echo("  request log  `lab logs`;  stop with `lab deploy --stop`")


@click.group("keys")
def keys_group():
    """Show or regenerate the service's primary and secondary keys (like get_keys/regen_key)."""


@keys_group.command("show")
@click.argument("which", required=False, type=click.Choice(["primary", "secondary"]))
@click.option("--name", help="Service name; default: the running service.")
@click.option("--raw", is_flag=True,
              help="Print only the full key, for capture in a pipe or $(...); rejected when output is a terminal.")
@click.pass_obj
def keys_show(workspace, which, name, raw):
    """Show the keys masked, or one key in full with --raw into a pipe."""
    service = lab_service.get_service(workspace, name)
    primary, secondary = service.get_keys()
    if raw:
        if which is None:
            raise click.UsageError("--raw needs PRIMARY or SECONDARY, e.g. `lab keys show primary --raw`")
        if sys.stdout.isatty():
            raise click.UsageError("--raw prints a secret and only writes into a pipe or $(...), not to a terminal")
        click.echo(primary if which == "primary" else secondary)
        return
    click.echo(f"service {service.name}, keys file {service.keys_file}")
    if which in (None, "primary"):
        click.echo(f"  primary    {mask(primary)}")
    if which in (None, "secondary"):
        click.echo(f"  secondary  {mask(secondary)}")


@keys_group.command("regenerate")
@click.argument("which", type=click.Choice(["primary", "secondary"]))
@click.option("--name", help="Service name; default: the running service.")
@click.pass_obj
def keys_regenerate(workspace, which, name):
    """Replace one key; the running service accepts the new key at once and the old one no more."""
    service = lab_service.get_service(workspace, name)
    keys = regenerate(service.keys_file, which)
    click.echo(f"regenerated the {which} key of {service.name}: {mask(keys[which + 'Key'])}")


@click.command("logs")
@click.option("--name", help="Service name; default: the running service.")
@click.option("--failed", is_flag=True, help="Only requests that failed (status 4xx or 5xx).")
@click.option("--tail", "tail", default=20, show_default=True, type=click.IntRange(0),
              help="Number of most recent records to show (0: only the summary).")
@click.option("--json", "as_json", is_flag=True, help="Print the records as JSON lines.")
@click.option("--server", is_flag=True, help="Show the inference server's own log instead of the request log.")
@click.pass_obj
def logs_command(workspace, name, failed, tail, as_json, server):
    """Show the request log (the Application Insights equivalent) and a summary.

    One record per request: time, request id, method, path, status, duration in ms, payload
    bytes, rows scored and error class. Keys and payloads are never logged.
    """
    service = lab_service.get_service(workspace, name)
    if server:
        path = service.folder / "server.log"
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines() if path.is_file() else []
        for line in lines[-tail:] if tail else []:
            click.echo(line)
        return
    records = lab_service.read_request_log(service.request_log)
    if failed:
        logged = len(records)
        records = [record for record in records if record.get("status", 0) >= 400]
        if not records:
            # With --json, stdout carries only JSON lines, so the message goes to stderr.
            click.echo(f"no failed requests among the {logged} logged in {service.request_log}", err=as_json)
            return
    shown = records[-tail:] if tail else []
    for record in shown:
        if as_json:
            click.echo(json.dumps(record))
        else:
            click.echo(
                f"{record['time']}  {record['request_id'][:8]}  {record['method']:<6} {record['path']:<14} "
                f"{record['status']}  {record['duration_ms']:>9.2f} ms  {record['payload_bytes']:>8} B"
                f"  rows={record.get('rows') if record.get('rows') is not None else '-'}"
                f"{'  ' + record['error_class'] if record.get('error_class') else ''}"
            )
    click.echo(summarize(records, service.request_log), err=as_json)


def summarize(records: list[dict], path) -> str:
    if not records:
        return f"no requests logged in {path}"
    statuses: dict[str, int] = {}
    for record in records:
        key = f"{str(record['status'])[0]}xx"
        statuses[key] = statuses.get(key, 0) + 1
    durations = sorted(record["duration_ms"] for record in records)
    counts = ", ".join(f"{key} {value}" for key, value in sorted(statuses.items()))
    return (
        f"{len(records)} requests ({counts}); duration p50 {percentile(durations, 50):.2f} ms, "
        f"p95 {percentile(durations, 95):.2f} ms, p99 {percentile(durations, 99):.2f} ms"
    )


def register(cli: click.Group) -> None:
    cli.add_command(deploy_command)
    cli.add_command(keys_group)
    cli.add_command(logs_command)
