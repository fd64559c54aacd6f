"""A local SageMaker Runtime: InvokeEndpoint and InvokeEndpointAsync over HTTP, for the packaged model.

    .venv/bin/python -m twin.endpoint_server --package build/twin/.../model.tar.gz [--port 8080]
        [--endpoint-name telecom-ml-local-churn] [--capture-dir build/capture] [--sampling-percent 100]

`boto3.client("sagemaker-runtime", endpoint_url="http://127.0.0.1:8080", region_name=..., aws_access_key_id="x",
aws_secret_access_key="x")` calls it unchanged: requests are signed by botocore, and the server ignores the
signature (it listens on the loopback interface only, by default).

Operations (botocore's sagemaker-runtime model: paths, headers and error shapes):
  POST /endpoints/<name>/invocations        InvokeEndpoint: Content-Type, Accept, X-Amzn-SageMaker-Inference-Id,
                                            X-Amzn-SageMaker-Custom-Attributes (accepted, not interpreted).
                                            200: the handler's body, Content-Type, x-Amzn-Invoked-Production-Variant.
  POST /endpoints/<name>/async-invocations  InvokeEndpointAsync: X-Amzn-SageMaker-InputLocation (file:// URL or
                                            a local path; the body is not used), X-Amzn-SageMaker-Content-Type,
                                            X-Amzn-SageMaker-Accept, X-Amzn-SageMaker-Inference-Id (generated when
                                            absent). 202 at once with {"InferenceId"} and the OutputLocation /
                                            FailureLocation headers (file:// URLs); a worker thread scores the input
                                            and writes the result (or the error) there, as SageMaker writes to S3.
Errors, as SageMaker answers them (boto3 raises botocore ClientError with this code):
  ValidationError (400)  unknown endpoint, malformed headers, a payload over 6 MB, an unusable InputLocation;
  ModelError (424)       the model container answered an error: OriginalStatusCode is the handler's status
                         (400 bad record, 406 Accept, 415 content type, 413, 500 model output) and
                         OriginalMessage its message (which names record and field).
The handler is the package's code/inference.py, loaded as twin/serve.py loads it and called as the
SageMaker inference toolkit calls it (input_fn receives a request context carrying Accept, so Accept is
checked before any model work). Data capture (twin/capture.py) records every successful invocation,
synchronous and asynchronous, with its InferenceId, in SageMaker's layout under --capture-dir.
"""

from __future__ import annotations

import argparse
import inspect
import json
import logging
import re
import socket
import sys
import threading
import traceback
import uuid
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from twin.capture import DEFAULT_VARIANT, CaptureConfigError, CaptureWriter, check_name
from twin.serve import extract_package, load_served_model

LOG = logging.getLogger("twin.endpoint_server")
DEFAULT_ENDPOINT = "telecom-ml-local-churn"
MAX_REALTIME_PAYLOAD = 6 * 1024 * 1024  # SageMaker's InvokeEndpoint limit
MAX_ASYNC_PAYLOAD = 1024 * 1024 * 1024  # InvokeEndpointAsync: 1 GB
LOCAL_ACCOUNT = "000000000000"
_PATH = re.compile(r"^/endpoints/([^/]+)/(invocations|async-invocations)$")
_PRINTABLE = re.compile(r"^\S[\x20-\x7e]*$")


class EndpointError(Exception):
    """An answer that is not a success: the SageMaker error code, HTTP status and fields."""

    def __init__(self, code: str, status: int, message: str, **fields: Any):
        super().__init__(message)
        self.code, self.status, self.message, self.fields = code, status, message, fields

    def body(self) -> bytes:
        return json.dumps(
            {"ErrorCode": self.code, "message": self.message, "Message": self.message, **self.fields}
        ).encode()


def validation_error(message: str) -> EndpointError:
    return EndpointError("ValidationError", 400, message)


class _Request:
    def __init__(self, headers: dict[str, str]):
        self._headers = headers

    def get_request_properties(self) -> dict[str, str]:
        return self._headers


class ToolkitContext:
    """What the SageMaker inference toolkit hands to handler functions that take a context."""

    def __init__(self, headers: dict[str, str]):
        self.request_processor = [_Request(headers)]


def _takes_context(func: Callable[..., Any], n_args: int) -> bool:
    return len(inspect.signature(func).parameters) == n_args + 1


@dataclass
class Invocation:
    body: bytes
    content_type: str
    accept: str
    inference_id: str | None = None


@dataclass
class LocalEndpoint:
    """One endpoint: the loaded handler and model, its variant name and its capture writer."""

    name: str
    handler: Any
    model: Any
    variant: str = DEFAULT_VARIANT
    capture: CaptureWriter | None = None
    async_root: Path | None = None

    def invoke(self, inv: Invocation) -> tuple[bytes, str]:
        """(body, content type) from the handler, as the toolkit runs it; EndpointError (ModelError) when
        the handler answers an error."""
        h = self.handler
        try:
            accept = inv.accept if inv.accept and inv.accept != "*/*" else "application/json"
            media = h.check_accept(accept) if hasattr(h, "check_accept") else accept
            if _takes_context(h.input_fn, 2):
                data = h.input_fn(inv.body, inv.content_type, ToolkitContext({"Accept": accept}))
            else:
                data = h.input_fn(inv.body, inv.content_type)
            out = h.output_fn(h.predict_fn(data, self.model), accept)
        except Exception as exc:  # the container's answer: its status code, or 500
            status = int(getattr(exc, "status_code", 500))
            message = str(exc)
            if status >= 500:
                LOG.error("endpoint %s: model error\n%s", self.name, traceback.format_exc())
            kind = "client" if status < 500 else "server"
            raise EndpointError(
                "ModelError",
                424,
                f'Received {kind} error ({status}) from {self.variant} with message "{message}". '
                f"See the local endpoint server's log for endpoint {self.name}.",
                OriginalStatusCode=status,
                OriginalMessage=message,
            ) from None
        payload = out.encode("utf-8") if isinstance(out, str) else bytes(out)
        if self.capture is not None:
            self.capture.capture(inv.body, inv.content_type, payload, media, inv.inference_id)
        return payload, media


def _file_path(location: str) -> Path:
    parsed = urlparse(location)
    if parsed.scheme == "file":
        if parsed.netloc not in ("", "localhost"):
            raise validation_error(f"InputLocation {location!r}: a file:// URL names no host")
        return Path(unquote(parsed.path))
    if parsed.scheme:
        raise validation_error(
            f"InputLocation {location!r}: the local endpoint reads file:// URLs or local paths, not {parsed.scheme}://"
        )
    return Path(location)


@dataclass
class AsyncJobs:
    """InvokeEndpointAsync's queue: one worker thread per endpoint server, results written atomically."""

    executor: ThreadPoolExecutor = field(default_factory=lambda: ThreadPoolExecutor(1, "async-invocations"))
    pending: list[Future[None]] = field(default_factory=list)

    def submit(self, endpoint: LocalEndpoint, source: Path, inv: Invocation) -> tuple[Path, Path]:
        root = endpoint.async_root or Path("build") / "async"
        name = uuid.uuid4().hex
        output = (root / "async-output" / endpoint.name / f"{name}.out").resolve()
        failure = (root / "async-failures" / endpoint.name / f"{name}-error.out").resolve()
        self.pending.append(self.executor.submit(self._run, endpoint, source, inv, output, failure))
        return output, failure

    @staticmethod
    def _run(endpoint: LocalEndpoint, source: Path, inv: Invocation, output: Path, failure: Path) -> None:
        try:
            body = source.read_bytes()
            if len(body) > MAX_ASYNC_PAYLOAD:
                raise validation_error(f"{source}: {len(body)} bytes; the limit is {MAX_ASYNC_PAYLOAD}")
            result, _ = endpoint.invoke(Invocation(body, inv.content_type, inv.accept, inv.inference_id))
            target, data = output, result
        except EndpointError as exc:
            target, data = failure, exc.message.encode()
        except OSError as exc:
            target, data = failure, f"async invocation failed on {source}: {exc}".encode()
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(".partial")
        tmp.write_bytes(data)
        tmp.replace(target)  # a poller never sees half a result

    def drain(self, timeout: float | None = None) -> None:
        """Wait for every submitted job (tests, shutdown)."""
        for future in list(self.pending):
            future.result(timeout)
        self.pending.clear()


def _header(headers: Any, name: str, limit: int) -> str | None:
    value = headers.get(name)
    if value is None:
        return None
    if len(value) > limit or not _PRINTABLE.match(value):
        raise validation_error(f"header {name}: must be 1 to {limit} printable ASCII characters")
    return str(value)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: botocore reuses its connections
    # Buffered writes: status, headers and body leave in one segment when the request is done.
    # (Unbuffered, the body's small second write waits on the client's delayed ACK: ~40 ms a request.)
    wbufsize = -1
    server: EndpointHTTPServer

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:
        LOG.debug("%s " + format, self.address_string(), *args)

    def _send(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("x-amzn-RequestId", str(uuid.uuid4()))
        self.end_headers()
        self.wfile.write(body)

    def _error(self, err: EndpointError) -> None:
        self._send(err.status, err.body(), {"Content-Type": "application/json", "x-amzn-ErrorType": err.code})

    def do_POST(self) -> None:
        try:
            body = self._read_body()
            match = _PATH.match(urlparse(self.path).path)
            if not match:
                raise EndpointError("UnknownOperationException", 404, f"no operation at {self.path!r}")
            name, operation = unquote(match.group(1)), match.group(2)
            endpoint = self.server.endpoints.get(name)
            if endpoint is None:
                raise validation_error(f"Endpoint {name} of account {LOCAL_ACCOUNT} not found.")
            if operation == "invocations":
                self._invoke(endpoint, body)
            else:
                self._invoke_async(endpoint)
        except EndpointError as err:
            self._error(err)
        except Exception:  # a bug here, not in the model: SageMaker's InternalFailure
            LOG.error("local endpoint server failure\n%s", traceback.format_exc())
            self._error(EndpointError("InternalFailure", 500, "the local endpoint server failed; see its log"))

    def _read_body(self) -> bytes:
        length = self.headers.get("Content-Length")
        if length is None or not length.isdigit():
            raise validation_error("Content-Length header required")
        n = int(length)
        if n > MAX_REALTIME_PAYLOAD:
            self.close_connection = True  # the unread body makes the connection unusable
            raise validation_error(
                f"Request payload is {n} bytes; InvokeEndpoint takes at most {MAX_REALTIME_PAYLOAD} bytes (6 MB)"
            )
        return self.rfile.read(n)

    def _common(self, prefix: str) -> tuple[str, str, str | None]:
        content_type = _header(self.headers, f"{prefix}Content-Type", 1024) or "application/octet-stream"
        accept = _header(self.headers, f"{prefix}Accept", 1024) or ""
        inference_id = _header(self.headers, "X-Amzn-SageMaker-Inference-Id", 64)
        _header(self.headers, "X-Amzn-SageMaker-Custom-Attributes", 1024)
        return content_type, accept, inference_id

    def _invoke(self, endpoint: LocalEndpoint, body: bytes) -> None:
        content_type, accept, inference_id = self._common("")
        payload, media = endpoint.invoke(Invocation(body, content_type, accept, inference_id))
        self._send(200, payload, {"Content-Type": media, "x-Amzn-Invoked-Production-Variant": endpoint.variant})

    def _invoke_async(self, endpoint: LocalEndpoint) -> None:
        content_type, accept, inference_id = self._common("X-Amzn-SageMaker-")
        location = _header(self.headers, "X-Amzn-SageMaker-InputLocation", 1024)
        if location is None:
            raise validation_error("X-Amzn-SageMaker-InputLocation (InputLocation) is required")
        source = _file_path(location)
        if not source.is_file():
            raise validation_error(f"InputLocation {location!r}: no such file")
        inference_id = inference_id or str(uuid.uuid4())
        output, failure = self.server.jobs.submit(endpoint, source, Invocation(b"", content_type, accept, inference_id))
        self._send(
            202,
            json.dumps({"InferenceId": inference_id}).encode(),
            {
                "Content-Type": "application/json",
                "X-Amzn-SageMaker-OutputLocation": output.as_uri(),
                "X-Amzn-SageMaker-FailureLocation": failure.as_uri(),
            },
        )


class EndpointHTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], endpoints: dict[str, LocalEndpoint]):
        super().__init__(address, _Handler)
        self.endpoints = endpoints
        self.jobs = AsyncJobs()


class LocalEndpointServer:
    """The HTTP server on a background thread. `url` is what boto3 takes as endpoint_url."""

    def __init__(self, endpoints: list[LocalEndpoint], host: str = "127.0.0.1", port: int = 0):
        names = [e.name for e in endpoints]
        if len(set(names)) != len(names):
            raise ValueError(f"endpoint names must be distinct, got {names}")
        self.httpd = EndpointHTTPServer((host, port), {e.name: e for e in endpoints})
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host.decode() if isinstance(host, bytes) else host}:{port}"

    def start(self) -> LocalEndpointServer:
        self._thread = threading.Thread(
            target=self.httpd.serve_forever, args=(0.05,), name="local-endpoint", daemon=True
        )
        self._thread.start()
        return self

    def drain(self, timeout: float | None = 60) -> None:
        self.httpd.jobs.drain(timeout)

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.httpd.jobs.executor.shutdown(wait=True)
        if self._thread is not None:
            self._thread.join()

    def __enter__(self) -> LocalEndpointServer:
        return self.start() if self._thread is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def local_endpoint(
    package: Path,
    work: Path,
    endpoint_name: str = DEFAULT_ENDPOINT,
    capture_root: Path | None = None,
    sampling_percent: float = 100.0,
    variant: str = DEFAULT_VARIANT,
) -> LocalEndpoint:
    """An endpoint serving `package` (a model.tar.gz, extracted under `work`, or an extracted model
    directory): the handler's model_fn runs here, once."""
    check_name(endpoint_name, "endpoint name")
    if package.is_dir():
        model_dir = package
    elif package.is_file():
        model_dir = extract_package(package, work / "model")
    else:
        raise FileNotFoundError(f"{package}: neither a model.tar.gz nor an extracted model directory")
    handler, model = load_served_model(model_dir)
    capture = (
        CaptureWriter(capture_root, endpoint_name, variant, sampling_percent) if capture_root is not None else None
    )
    return LocalEndpoint(endpoint_name, handler, model, variant, capture, work / "async")


def start_local_endpoint(
    package: Path,
    work: Path,
    endpoint_name: str = DEFAULT_ENDPOINT,
    capture_root: Path | None = None,
    sampling_percent: float = 100.0,
    host: str = "127.0.0.1",
    port: int = 0,
) -> LocalEndpointServer:
    """Load the package and serve it on a background thread (port 0: any free port; see `.url`).
    Stop it with `.stop()` (or use it as a context manager)."""
    endpoint = local_endpoint(package, work, endpoint_name, capture_root, sampling_percent)
    return LocalEndpointServer([endpoint], host, port).start()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m twin.endpoint_server", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--package", type=Path, required=True, help="model.tar.gz or an extracted model directory")
    ap.add_argument("--endpoint-name", default=DEFAULT_ENDPOINT)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8080)
    ap.add_argument(
        "--work",
        type=Path,
        default=Path("build") / "local-endpoint",
        help="where the package is extracted and async results are written",
    )
    ap.add_argument("--capture-dir", type=Path, help="data capture root (none: no capture)")
    ap.add_argument("--sampling-percent", type=float, default=100.0)
    args = ap.parse_args(argv)
    if not 0 <= args.port <= 65535:
        ap.error(f"--port {args.port}: must be 0..65535")
    try:
        server = start_local_endpoint(
            args.package, args.work, args.endpoint_name, args.capture_dir, args.sampling_percent, args.host, args.port
        )
    except (CaptureConfigError, FileNotFoundError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"serving {args.endpoint_name} at {server.url} (Ctrl-C stops)", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
