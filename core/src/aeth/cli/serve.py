"""``aeth serve``: the OpenAI-compatible HTTP and WebSocket API (:mod:`aeth.serving`)."""

from __future__ import annotations

import click

from aeth.cli.root import cli, cli_app
from aeth.serving.settings import options


def _settings_options(command):
    """One click option per :class:`~aeth.serving.settings.ServeSettings` field."""
    for name, default, meta in reversed(options()):
        flag = "--" + name.replace("_", "-")
        if meta.get("flag"):
            command = click.option(flag, name, is_flag=True, default=default, help=meta["help"])(command)
            continue
        kind = (click.IntRange(meta.get("min"), meta.get("max")) if isinstance(default, int) else str)
        command = click.option(flag, name, type=kind, default=default, show_default=True, help=meta["help"])(command)
    return command


@cli.command()
@_settings_options
@click.option("--log-level", type=click.Choice(["critical", "error", "warning", "info", "debug"]), default="info",
              show_default=True, help="How much the HTTP server logs (one line per request at info).")
@click.pass_context
def serve(ctx, log_level, **values):
    """Serve the specialists over an OpenAI-compatible API.

    Any OpenAI client works unchanged with base_url http://HOST:PORT/v1. Use model "aeth" to
    let aeth route each request, a specialist's name (see GET /v1/models) to pick one,
    NAME@VERSION for one adapter version, or "general".

    \b
    Endpoints:
      POST /v1/chat/completions   chat, streamed (SSE) or not; n, seed, stop, images as data URLs
      GET  /v1/models             specialists, active adapter versions and their lineage
      POST /v1/feedback           feedback on an answer, by its interaction id
      WS   /v1/ws                 many requests on one socket, with cancel and feedback
      GET  /health                liveness (no key)
      GET  /metrics               Prometheus metrics

    \b
    Keys: with no API keys the server listens on loopback only (or beyond it with
    --insecure-no-auth); once `aeth keys create NAME` made one, every request needs one.

    \b
    Examples:
      aeth serve
      aeth serve --port 9000 --max-concurrent 8
      curl -N localhost:8000/v1/chat/completions -H 'content-type: application/json' \\
        -d '{"model": "aeth", "stream": true, "messages": [{"role": "user", "content": "Hi"}]}'

    Docs: docs/serving.md.
    """
    import socket
    import sys

    import uvicorn

    from aeth.serving.app import create_app
    from aeth.serving.settings import ServeSettings

    settings = ServeSettings(**values)
    app = cli_app(ctx)
    if not settings.loopback and not settings.insecure_no_auth and not app.store.has_keys():
        raise click.UsageError(f"refusing to listen on {settings.host} without API keys: anyone who can reach it "
                               "could use the models. Create a key (`aeth keys create NAME`), listen on 127.0.0.1, "
                               "or pass --insecure-no-auth if that is what you mean")
    family = socket.AF_INET6 if ":" in settings.host else socket.AF_INET
    # IPPROTO_TCP given explicitly: asyncio sets TCP_NODELAY only on sockets that say they are TCP,
    # and without it every response on a kept-alive connection waits ~40 ms for a delayed ACK
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((settings.host, settings.port))
        # listening before "serving on" is printed: a client that connects at once waits in the
        # backlog until uvicorn accepts, instead of being refused while the app starts up
        sock.listen(2048)
    except OSError as e:
        raise click.ClickException(f"cannot listen on {settings.host}:{settings.port}: {e.strerror} "
                                   "(choose another with --port)") from None
    port = sock.getsockname()[1]
    web = create_app(app, settings=settings)
    keys = "API keys required" if app.store.has_keys() else "no API keys (loopback only)" if settings.loopback \
        else "NO AUTHENTICATION"
    click.secho(f"aeth serving on http://{settings.host}:{port}/v1 ({keys}); Ctrl-C stops", err=True)
    # the decode thread holds the GIL between torch ops; hand it over every 1 ms (not 5) so the
    # event loop answers, and refuses, requests promptly while answers are being generated
    sys.setswitchinterval(0.001)
    config = uvicorn.Config(web, log_level=log_level, ws="websockets-sansio", timeout_graceful_shutdown=5)
    try:
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        app.close()
