"""A local stand-in for ZeroGPU's device API, enough for the real `spaces` package to start an
app in ZeroGPU mode on a machine without a GPU: it accepts the start-up report and refuses
every GPU, as the real one does when a visitor's quota is spent (`quota`) or no GPU is free
(`busy`). What the package sends and expects: spaces/zero/api.py (`APIClient`)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class DeviceAPI:
    """`with DeviceAPI("quota") as api:` serves at `api.url`; `api.scheduled` counts GPU asks."""

    def __init__(self, refusal: str = "quota") -> None:
        if refusal not in ("quota", "busy"):
            raise ValueError("refusal is 'quota' or 'busy'")
        self.refusal = refusal
        self.scheduled = 0
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802  (http.server's name)
                path = self.path.split("?")[0]
                if path == "/startup-report":
                    self._answer(200, b"")
                elif path == "/schedule":
                    api.scheduled += 1
                    if api.refusal == "quota":  # 429 with what is left and how long to wait
                        self._answer(429, json.dumps({"left": 0, "wait": "PT600S"}).encode(), "application/json")
                    else:  # 503: no GPU free
                        self._answer(503, b"")
                else:
                    self._answer(404, b"")

            def _answer(self, status: int, body: bytes, kind: str = "text/plain") -> None:
                self.send_response(status)
                self.send_header("content-type", kind)
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:  # quiet
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> "DeviceAPI":
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()


if __name__ == "__main__":  # serve until interrupted: python -m tests.zerogpu_standin [quota|busy]
    import sys
    import time

    with DeviceAPI(sys.argv[1] if len(sys.argv) > 1 else "quota") as api:
        print(api.url, flush=True)
        while True:
            time.sleep(3600)
