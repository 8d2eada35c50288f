"""`lab pipeline` and `lab auth`: create, publish, serve and trigger local pipelines, and their runs."""

from __future__ import annotations

import json
import logging
import signal
import sys
from datetime import datetime, timezone
from pathlib import Path

import click

from lab.pipelines import auth, client, definition, publish, runner, runs
from lab.pipelines.errors import PipelineError
from lab.pipelines.server import DEFAULT_HOST, DEFAULT_PORT, PipelineServer, running_server_url

EXPERIMENT_DEFAULT = "pipeline-rest-endpoint"
POSITIVE_SECONDS = click.FloatRange(min=0, min_open=True)


def _merge_alias(value, alias_value, option: str, alias: str):
    """Return the value of ``option`` or of its hidden old name ``alias``; raise if both are given."""
    if alias_value is None:
        return value
    if value is not None:
        raise click.UsageError(f"{alias} is the old name of {option}; pass only {option}")
    return alias_value


@click.group("pipeline")
def pipeline_group():
    """Create an AutoML training pipeline, publish it behind a local REST endpoint, and run it."""


@pipeline_group.command("create")
@click.option("--name", default=definition.DEFAULT_PIPELINE_NAME, show_default=True, help="Pipeline name.")
@click.option("--dataset", "dataset_ref", help="Dataset as NAME or NAME:VERSION (default: the newest registered).")
@click.option("--model-name", help="Name to register the best model under (default: bankmarketing-automl).")
@click.option("--timeout", "timeout_minutes", type=float, metavar="MINUTES",
              help=f"Default AutoML time budget in minutes, as for `lab train` (parameter timeout_minutes); "
                   f"greater than 0 and at most {definition.MAX_TIMEOUT_MINUTES:g} (24 hours). "
                   f"[default: {definition.DEFAULT_TIMEOUT_MINUTES:g}]")
@click.option("--timeout-minutes", "timeout_minutes_alias", type=float, hidden=True)
@click.option("--primary-metric", type=click.Choice(definition.PRIMARY_METRICS),
              default=definition.DEFAULT_PRIMARY_METRIC, show_default=True,
              help="Default primary metric (parameter primary_metric).")
@click.option("--description", default="", help="Free text stored with the pipeline.")
@click.pass_obj
def create_command(workspace, name, dataset_ref, model_name, timeout_minutes, timeout_minutes_alias, primary_metric,
                   description):
    """Store a new pipeline version: an AutoML step, then registration of the best model."""
    timeout_minutes = _merge_alias(timeout_minutes, timeout_minutes_alias, "--timeout", "--timeout-minutes")
    if timeout_minutes is None:
        timeout_minutes = definition.DEFAULT_TIMEOUT_MINUTES
    created = definition.create_pipeline(
        workspace, dataset_ref, name=name, model_name=model_name, timeout_minutes=timeout_minutes,
        primary_metric=primary_metric, description=description,
    )
    click.echo(f"created pipeline {created.ref}")
    click.echo(f"  dataset     {created.dataset} (label {created.label!r})")
    click.echo(f"  steps       {' -> '.join(step.name for step in created.steps)}")
    click.echo(f"  outputs     {', '.join(created.outputs)}")
    for parameter in created.parameters:
        click.echo(f"  parameter   {parameter.name} ({parameter.type}, default {parameter.default!r})")
    click.echo(f"  model name  {created.model_name}")


@pipeline_group.command("publish")
@click.argument("pipeline_ref", required=False)
@click.option("--name", "display_name", default="Bankmarketing Train", show_default=True, help="Published name.")
@click.option("--version", "published_version", default="1.0", show_default=True, help="Published version label.")
@click.option("--description", default="", help="Description of the published pipeline.")
@click.option("--serve", is_flag=True, help="Start the endpoint after publishing (as `lab pipeline serve`).")
@click.option("--host", default=DEFAULT_HOST, show_default=True, help="Address to bind with --serve.")
@click.option("--port", type=int, default=DEFAULT_PORT, show_default=True, help="Port to bind with --serve.")
@click.pass_obj
def publish_command(workspace, pipeline_ref, display_name, published_version, description, serve, host, port):
    """Publish PIPELINE_REF (NAME or NAME:VERSION, default the newest) and print its endpoint URL."""
    published = publish.publish_pipeline(workspace, pipeline_ref, display_name, published_version, description)
    click.echo(f"published {published.pipeline} as {published.name!r} version {published.version}")
    click.echo(f"  id        {published.id}")
    if serve:
        _serve(workspace, host, port, max_concurrent_runs=1, announce=[published])
        return
    base_url = running_server_url(workspace)
    click.echo(f"  endpoint  {published.endpoint(base_url or _base_url(host, port))}")
    if base_url is None:
        click.echo("  the endpoint is not running: start it with `lab pipeline serve`", err=True)


@pipeline_group.command("serve")
@click.option("--host", default=DEFAULT_HOST, show_default=True, help="Address to bind; 0.0.0.0 exposes it.")
@click.option("--port", type=int, default=DEFAULT_PORT, show_default=True, help="Port to bind (0 picks a free one).")
@click.option("--max-concurrent-runs", type=click.IntRange(min=1), default=1, show_default=True,
              help="Runs that execute at the same time; the others wait queued.")
@click.pass_obj
def serve_command(workspace, host, port, max_concurrent_runs):
    """Serve every published pipeline of the workspace until Ctrl-C.

    Runs in progress go on after Ctrl-C; the next start watches them again. A run whose runner
    process is gone at start-up is marked failed; queued runs start.
    """
    _serve(workspace, host, port, max_concurrent_runs, announce=publish.list_published(workspace))


def _serve(workspace, host, port, max_concurrent_runs, announce) -> None:
    auth.get_or_create_token(workspace)
    # The endpoint logs one access line per request and its run decisions at INFO. The default
    # verbosity shows only warnings, so it is raised for these loggers. `-vv` still adds debug lines.
    endpoint_logger = logging.getLogger("lab.pipelines")
    if endpoint_logger.getEffectiveLevel() > logging.INFO:
        endpoint_logger.setLevel(logging.INFO)
    try:
        server = PipelineServer(workspace, host, port, max_concurrent_runs)
    except OSError as exc:
        raise PipelineError(f"cannot bind {host}:{port} ({exc.strerror}); pass another --port") from None
    click.echo(f"pipeline endpoint on {server.url} (Ctrl-C stops it; runs in progress go on)")
    if not announce:
        click.echo("  no published pipeline yet: run `lab pipeline publish`; the endpoint serves it at once")
    for published in announce:
        click.echo(f"  {published.name} {published.version}: {published.endpoint(server.url)}")
    click.echo("  token: `lab auth token` prints it")
    # Redirected to a file, stdout is block-buffered: show the URL now, not when the endpoint stops.
    sys.stdout.flush()
    # SIGTERM (a service manager, `docker stop`) stops the endpoint the same way as Ctrl-C.
    signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        click.echo("endpoint stopped", err=True)


def _raise_keyboard_interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


@pipeline_group.command("list")
@click.pass_obj
def list_command(workspace):
    """List pipelines and published pipelines."""
    base_url = running_server_url(workspace) or _base_url(DEFAULT_HOST, DEFAULT_PORT)
    if not definition.list_pipelines(workspace):
        click.echo("no pipeline yet; create one with `lab pipeline create`")
    for item in definition.list_pipelines(workspace):
        click.echo(f"pipeline   {item.ref:30} dataset {item.dataset}, created {item.created_at}")
    for item in publish.list_published(workspace):
        click.echo(f"published  {item.id}  {item.name!r} {item.version} -> {item.pipeline}")
        click.echo(f"           {item.endpoint(base_url)}")


@pipeline_group.command("trigger")
@click.option("--endpoint", required=True, help="The published pipeline's REST endpoint (local or Azure).")
@click.option("--token", help=f"Bearer token (default: ${auth.TOKEN_ENV}; for a loopback endpoint, the workspace's).")
@click.option("--experiment", default=EXPERIMENT_DEFAULT, show_default=True, help="Experiment name of the run.")
@click.option("--param", "params", multiple=True, metavar="NAME=VALUE",
              help="Parameter assignment; repeat for several. Values are read as JSON when they parse.")
@click.option("--wait", is_flag=True, help="Poll the run's status until it ends.")
@click.option("--wait-timeout", "timeout_seconds", type=POSITIVE_SECONDS, metavar="SECONDS",
              help="With --wait: stop waiting after this many seconds; the run goes on.")
@click.option("--timeout", "timeout_seconds_alias", type=POSITIVE_SECONDS, hidden=True)
@click.pass_obj
def trigger_command(workspace, endpoint, token, experiment, params, wait, timeout_seconds, timeout_seconds_alias):
    """Trigger a published pipeline with Azure's REST call and print the run id.

    Every option is checked before the request is sent, so a bad option never leaves a run behind.
    """
    timeout_seconds = _merge_alias(timeout_seconds, timeout_seconds_alias, "--wait-timeout", "--timeout")
    if timeout_seconds is not None and not wait:
        raise click.UsageError("--wait-timeout applies only with --wait; add --wait or drop --wait-timeout")
    assignments = dict(client.parse_assignment(text) for text in params)
    client.check_endpoint(endpoint)
    client.check_experiment_name(experiment)
    token = client.resolve_token(token, endpoint, workspace)

    answer = client.submit(endpoint, token, experiment, assignments)
    click.echo(answer["Id"])
    if wait:
        status = client.wait_for_run(endpoint, token, experiment, answer["Id"], timeout_seconds=timeout_seconds)
        click.echo(f"run {answer['Id']}: {client.display_status(status['status'])}")
        if status.get("error"):
            click.echo(f"  error: {status['error']}", err=True)
        if status["status"] != "Completed":
            raise SystemExit(1)


@pipeline_group.command("runs")
@click.option("--pipeline", "published_id", help="Only runs of this published pipeline id.")
@click.pass_obj
def runs_command(workspace, published_id):
    """List pipeline runs, oldest first, with their state and duration."""
    found = [run for run in runs.list_runs(workspace) if published_id in (None, run.data["published_id"])]
    if not found:
        click.echo("no pipeline runs yet; trigger one with `lab pipeline trigger`")
        return
    click.echo(f"{'run id':36}  {'status':9}  {'experiment':24}  {'created':25}  steps took")
    for run in found:
        data = run.data
        took = _seconds(data)
        click.echo(f"{run.id}  {run.status:9}  {data['experiment_name']:24}  {data['created_at']}"
                   f"{f'  {took:.1f} s' if took is not None else ''}")


@pipeline_group.command("run-status")
@click.argument("run_id")
@click.option("--wait", is_flag=True, help="Wait until the run ends.")
@click.option("--wait-timeout", "timeout_seconds", type=POSITIVE_SECONDS, metavar="SECONDS",
              help="With --wait: stop waiting after this many seconds; the run goes on.")
@click.option("--timeout", "timeout_seconds_alias", type=POSITIVE_SECONDS, hidden=True)
@click.option("--json", "as_json", is_flag=True, help="Print the run record as JSON.")
@click.pass_obj
def run_status_command(workspace, run_id, wait, timeout_seconds, timeout_seconds_alias, as_json):
    """Show a run's state, parameters, steps with timings, error and outputs."""
    timeout_seconds = _merge_alias(timeout_seconds, timeout_seconds_alias, "--wait-timeout", "--timeout")
    if timeout_seconds is not None and not wait:
        raise click.UsageError("--wait-timeout applies only with --wait; add --wait or drop --wait-timeout")
    run = runs.get_run(workspace, run_id)
    if wait:
        run = run.wait(timeout_seconds)
    if as_json:
        click.echo(json.dumps(run.data, indent=2))
    else:
        _print_run(run)
    if wait and run.status != runs.COMPLETED:
        raise SystemExit(1)


@pipeline_group.command("cancel")
@click.argument("run_id")
@click.pass_obj
def cancel_command(workspace, run_id):
    """Cancel a queued or running run."""
    status = runner.cancel_run(workspace, run_id)
    click.echo(f"run {run_id}: {'cancel requested' if status == runs.RUNNING else status}")


@pipeline_group.command("download")
@click.argument("run_id")
@click.option("--output", "output_name", type=click.Choice(definition.OUTPUT_NAMES), required=True,
              help="Named output of the run.")
@click.option("--to", "target", type=click.Path(file_okay=False), default=".", show_default=True,
              help="Folder to download into; the output lands in a subfolder named after it.")
@click.pass_obj
def download_command(workspace, run_id, output_name, target):
    """Download a completed run's output, as Azure's get_pipeline_output(NAME).download()."""
    run = runs.get_run(workspace, run_id)
    folder = run.get_pipeline_output(output_name).download(Path(target))
    click.echo(f"downloaded {output_name} of run {run_id} to {folder}")
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            click.echo(f"  {path.relative_to(folder)}")


def _print_run(run: runs.PipelineRun) -> None:
    data = run.data
    click.echo(f"run {run.id}: {run.status}")
    click.echo(f"  pipeline    {data['pipeline']} (published {data['published_id']})")
    click.echo(f"  experiment  {data['experiment_name']}")
    click.echo(f"  parameters  {json.dumps(data['parameters'])}")
    click.echo(f"  created     {data['created_at']}  started {data['started_at'] or '-'}  ended {data['ended_at'] or '-'}")
    for step in data["steps"]:
        click.echo(f"  step {step['name']:16} {step['status']:9} {_step_time(step)}")
        if step["error"]:
            click.echo(f"      error: {step['error']}")
    if data.get("registered_model"):
        click.echo(f"  registered  model {data['registered_model']}")
    if data.get("error"):
        click.echo(f"  error       {data['error']}")
    if run.status == runs.COMPLETED:
        click.echo(f"  outputs     {', '.join(data['outputs'])} (`lab pipeline download {run.id} --output NAME`)")


def _step_time(step: dict) -> str:
    """Return a step's duration, or for a running step the time since it started."""
    if step["duration_seconds"] is not None:
        return f"{step['duration_seconds']:.1f} s"
    if step["status"] == runs.RUNNING and step.get("started_at"):
        started = datetime.fromisoformat(step["started_at"])
        return f"{(datetime.now(timezone.utc) - started).total_seconds():.0f} s so far"
    return "-"


def _seconds(data: dict) -> float | None:
    durations = [step["duration_seconds"] for step in data["steps"] if step["duration_seconds"] is not None]
    return sum(durations) if durations else None


def _base_url(host: str, port: int) -> str:
    return f"http://{host}:{port}"


@click.group("auth")
def auth_group():
    """Bearer tokens for the local pipeline endpoint."""


@auth_group.command("token")
@click.option("--rotate", is_flag=True, help="Replace the token; clients with the old one get 401.")
@click.pass_obj
def token_command(workspace, rotate):
    """Print the pipeline endpoint's bearer token, creating it on first use (owner-only file)."""
    click.echo(auth.get_or_create_token(workspace, rotate=rotate))


def register(cli: click.Group) -> None:
    cli.add_command(pipeline_group)
    cli.add_command(auth_group)
