"""`speech-s2s serve`: live captions in a browser, and a WebSocket server for other clients.

Nothing heavy (torch, websockets) is imported until the command runs.
"""

from __future__ import annotations

import argparse
import logging
import sys

from speech_s2s.cli.options import positive
from speech_s2s.cli.stream import add_live_decoding, live_config, live_decoding_error


def add_serve(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "serve", help="live captions in a browser: a web page and a WebSocket server",
        description="Serve the captions page at http://HOST:PORT/ and live recognition over WebSocket: /ws takes raw "
        "signed 16-bit little-endian mono PCM (16 kHz unless ?rate=N) and sends the events of `stream --output-format jsonl`; "
        "/vosk speaks vosk-server's protocol. The model is loaded once; each connection decodes on its own. "
        "Ctrl-C or SIGTERM closes every connection and exits 0. Needs the serve extra: pip install 'speech-s2s[serve]'.",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only; 0.0.0.0: every interface)")
    p.add_argument("--port", type=int, default=8765, help="port (default 8765; 0: any free one, printed at start)")
    p.add_argument("--token", help="a secret clients must give (?token=T or 'Authorization: Bearer T'); the page passes on its own ?token=")
    p.add_argument("--max-sessions", type=positive, default=None, help="connections decoding at once; one more is refused "
                   "with 1013 'server full' (default: the usable cores)")
    p.add_argument("--allow-origin", action="append", default=[], metavar="ORIGIN",
                   help="let pages from ORIGIN (e.g. https://example.org) connect, besides the server's own page; repeatable; "
                   "* for any. Clients that send no Origin (not browsers) are always let in")
    p.add_argument("--idle-timeout", type=float, default=60.0, help="close a connection that sends nothing for this many seconds (default 60)")
    p.add_argument("--max-frame-kib", type=positive, default=1024, help="largest WebSocket message, in KiB (default 1024); larger closes with 1009")
    p.add_argument("--certfile", help="TLS certificate (PEM): serve https and wss, which browsers need for the microphone on another host")
    p.add_argument("--keyfile", help="TLS private key (PEM), with --certfile")
    add_live_decoding(p)
    p.set_defaults(run=run_serve)


def _usage_error(args: argparse.Namespace) -> str | None:
    if not 0 <= args.port <= 65535:
        return f"--port {args.port}: give 0 to 65535"
    if args.idle_timeout <= 0:
        return "--idle-timeout must be positive"
    if args.keyfile and not args.certfile:
        return "--keyfile needs --certfile"
    return live_decoding_error(args)


def run_serve(args: argparse.Namespace) -> int:
    problem = _usage_error(args)
    if problem:
        print(f"speech-s2s serve: error: {problem}", file=sys.stderr)
        return 2
    try:
        import websockets  # noqa: F401  (the optional dependency: say what to install, before loading a model)
    except ImportError:
        print("speech-s2s serve: error: needs the websockets package: pip install 'speech-s2s[serve]'", file=sys.stderr)
        return 2
    ssl_context = None
    if args.certfile:
        import ssl

        ssl_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        try:
            ssl_context.load_cert_chain(args.certfile, args.keyfile)
        except ssl.SSLError:  # ssl's own words ("[SSL] PEM lib (_ssl.c:3905)") say nothing a user can act on
            print(f"speech-s2s serve: error: --certfile {args.certfile}: not a PEM certificate with its private key "
                  "(or give the key with --keyfile)", file=sys.stderr)
            return 2
        except OSError as error:
            print(f"speech-s2s serve: error: --certfile {args.certfile}: {error.strerror or error}", file=sys.stderr)
            return 2

    import asyncio

    from speech_s2s.serve.server import CaptionServer, ServeConfig
    from speech_s2s.serve.workers import WorkerError

    recognizer, options = live_config(args)
    config = ServeConfig(
        host=args.host, port=args.port, token=args.token, allow_origins=tuple(args.allow_origin), idle_seconds=args.idle_timeout,
        max_frame_bytes=args.max_frame_kib * 1024, stream=options, verbose=args.verbose, ssl=ssl_context,
        **({"max_sessions": args.max_sessions} if args.max_sessions else {}),
    )
    logging.getLogger("websockets").setLevel(logging.DEBUG if args.verbose else logging.ERROR)  # ours says what happened
    server = CaptionServer(recognizer, config, threads=args.threads or 1)
    if args.host not in ("127.0.0.1", "localhost", "::1") and not args.token:
        print(f"speech-s2s serve: warning: listening on {args.host} without --token: anyone who can reach this port can use it",
              file=sys.stderr)

    def ready(url: str) -> None:
        websocket = url.replace("http", "ws", 1)
        print(f"speech-s2s: captions at {url} (WebSocket {websocket}ws, Vosk protocol {websocket}vosk; "
              f"{config.max_sessions} sessions at most); Ctrl-C to stop", file=sys.stderr, flush=True)

    try:
        asyncio.run(server.run(ready))
    except WorkerError as error:  # the model or an LM cannot be loaded: the message names it
        print(f"speech-s2s: error: {error}", file=sys.stderr)
        return 1
    except OSError as error:  # the port is taken, the address is not this machine's
        print(f"speech-s2s: error: cannot listen on {args.host}:{args.port}: {error.strerror or error}", file=sys.stderr)
        return 1
    print("speech-s2s: stopped", file=sys.stderr)
    return 0
