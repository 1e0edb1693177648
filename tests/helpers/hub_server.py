"""A small Hugging Face Hub look-alike on 127.0.0.1 for tests of the real
``huggingface_hub`` code path: repo info, tree listing, and resolve (HEAD/GET),
with the headers and error codes the client relies on."""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit


@dataclass
class FakeRepo:
    """One model repo (or data set, as ``datasets/org/name``); each revision name or
    commit maps to a file set."""

    repo_id: str
    commits: dict[str, dict[str, bytes]]  # commit sha -> {path: bytes}
    refs: dict[str, str] = field(default_factory=dict)  # branch/tag -> commit sha

    def resolve(self, revision: str) -> str | None:
        if revision in self.commits:
            return revision
        return self.refs.get(revision)


class HubServer:
    def __init__(self, repos: list[FakeRepo]) -> None:
        self.repos = {r.repo_id: r for r in repos}
        self.requests: list[tuple[str, str]] = []
        handler = self._make_handler()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def endpoint(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> HubServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def _make_handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:  # keep pytest output clean
                pass

            def do_HEAD(self) -> None:
                self._serve(body=False)

            def do_GET(self) -> None:
                self._serve(body=True)

            def _serve(self, *, body: bool) -> None:
                path = unquote(urlsplit(self.path).path)
                server.requests.append((self.command, path))
                if path.startswith("/api/models/"):
                    self._api(path.removeprefix("/api/models/"))
                elif path.startswith("/api/datasets/"):  # data sets live under "datasets/<id>"
                    self._api("datasets/" + path.removeprefix("/api/datasets/"))
                elif "/resolve/" in path:
                    self._resolve(path.lstrip("/"), body=body)
                else:
                    self._error(404, "EntryNotFound")

            def _api(self, rest: str) -> None:
                for marker in ("/revision/", "/tree/"):
                    if marker in rest:
                        repo_id, _, revision = rest.partition(marker)
                        break
                else:
                    repo_id, revision = rest, "main"
                found = self._lookup(repo_id, revision)
                if found is None:
                    return
                repo, commit = found
                files = repo.commits[commit]
                if "/tree/" in rest:
                    payload: object = [
                        {"type": "file", "path": p, "size": len(b), "oid": hashlib.sha1(b).hexdigest()}
                        for p, b in sorted(files.items())
                    ]
                else:
                    payload = {"id": repo_id.removeprefix("datasets/"), "sha": commit, "siblings": [{"rfilename": p} for p in sorted(files)]}
                self._send(200, json.dumps(payload).encode(), {"Content-Type": "application/json"}, body=True)

            def _resolve(self, rest: str, *, body: bool) -> None:
                repo_part, _, tail = rest.partition("/resolve/")
                revision, _, filename = tail.partition("/")
                found = self._lookup(repo_part, revision)
                if found is None:
                    return
                repo, commit = found
                data = repo.commits[commit].get(filename)
                if data is None:
                    return self._error(404, "EntryNotFound", {"X-Repo-Commit": commit})
                headers = {
                    "X-Repo-Commit": commit,
                    "ETag": f'"{hashlib.sha256(data).hexdigest()}"',
                    "Content-Type": "application/octet-stream",
                }
                self._send(200, data, headers, body=body)

            def _lookup(self, repo_id: str, revision: str) -> tuple[FakeRepo, str] | None:
                """The repo and commit, or None after answering with the Hub's error code."""
                repo = server.repos.get(repo_id)
                if repo is None:
                    self._error(404, "RepoNotFound")
                    return None
                commit = repo.resolve(revision)
                if commit is None:
                    self._error(404, "RevisionNotFound")
                    return None
                return repo, commit

            def _error(self, code: int, error_code: str, extra: dict[str, str] | None = None) -> None:
                headers = {"X-Error-Code": error_code, "Content-Type": "application/json", **(extra or {})}
                self._send(code, json.dumps({"error": error_code}).encode(), headers, body=self.command != "HEAD")

            def _send(self, code: int, data: bytes, headers: dict[str, str], *, body: bool) -> None:
                self.send_response(code)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if body:
                    self.wfile.write(data)

        return Handler
