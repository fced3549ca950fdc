"""Where a ``data_dir`` lives: a local folder, or ``s3://bucket/prefix`` on any S3-compatible store.

The storage code works on paths: :class:`pathlib.Path` for a local ``data_dir``, :class:`RemotePath` for a
remote one. A :class:`RemotePath` has the few ``Path`` methods the storage layer uses (``/``, ``name``,
``exists``, ``read_bytes``, ``open``, ``glob``, ``unlink``, ``replace`` ...), carried out through pyarrow's
:class:`pyarrow.fs.S3FileSystem`, so one code path serves both.

Atomic replacement keeps its meaning without rename. On S3 an object becomes visible only when its upload
completes (one PUT, or the completion of a multipart upload), so a file is written straight under its name:
a reader sees the old object or the new one, never part of either, and no temporary object ever appears in a
listing. ``replace`` (moving a staged file into place) is a server-side copy followed by a delete of the
source, which is again one atomic change of the target.

The store is reached with the usual AWS settings, read where every AWS tool reads them:

* credentials: ``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY`` (/ ``AWS_SESSION_TOKEN``), or anything else
  of the AWS SDK's default chain (profiles, an instance role, Kubernetes IRSA);
* region: ``AWS_REGION`` or ``AWS_DEFAULT_REGION``;
* endpoint of an S3-compatible store (MinIO, Ceph, moto ...): ``AWS_ENDPOINT_URL_S3`` or
  ``AWS_ENDPOINT_URL`` (``http://host:port`` or ``https://…``).

No setting is ever part of a path, a message or metadata: a :class:`RemotePath` prints as
``s3://bucket/key``.

Example:
    >>> root = store_root("s3://smsc-data/prod")
    >>> (root / "acme" / "_smsc_store.json").exists()
    False
"""

from __future__ import annotations

import fnmatch
import os
import threading
import urllib.parse
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Any

import pyarrow.fs as pafs

from smsc_dagster.core import SMSCConfigError

REMOTE_SCHEMES = ("s3",)
_FILESYSTEMS: dict[tuple, pafs.FileSystem] = {}
_LOCK = threading.Lock()


def s3_filesystem() -> pafs.S3FileSystem:
    """An :class:`pyarrow.fs.S3FileSystem` configured from the usual AWS variables; one per setting, shared
    in the process.

    Raises:
        SMSCConfigError: ``AWS_ENDPOINT_URL(_S3)`` is not an ``http(s)://host[:port]`` URL.
    """
    name = "AWS_ENDPOINT_URL_S3" if os.environ.get("AWS_ENDPOINT_URL_S3") else "AWS_ENDPOINT_URL"
    endpoint, scheme = os.environ.get(name) or None, None
    if endpoint:
        parsed = urllib.parse.urlsplit(endpoint)
        if parsed.scheme not in ("http", "https") or not parsed.netloc or "@" in parsed.netloc:
            raise SMSCConfigError(f"{name} must be an http(s)://host[:port] URL of the S3-compatible store")
        scheme, endpoint = parsed.scheme, parsed.netloc
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    key = (
        endpoint, scheme, region,
        # Credentials are part of the cache key (a rotated key gets a new client), never of anything printed.
        os.environ.get("AWS_ACCESS_KEY_ID"), os.environ.get("AWS_SECRET_ACCESS_KEY"), os.environ.get("AWS_SESSION_TOKEN"),
    )
    with _LOCK:
        fs = _FILESYSTEMS.get(key)
        if fs is None:
            options: dict[str, Any] = {}
            if endpoint:
                options["endpoint_override"] = endpoint
                # An S3-compatible server is addressed by path (bucket in the path, not the host name).
                options["force_virtual_addressing"] = False
            if scheme:
                options["scheme"] = scheme
            if region:
                options["region"] = region
            fs = _FILESYSTEMS[key] = pafs.S3FileSystem(**options)
        return fs


def store_root(location: str | os.PathLike[str] | RemotePath) -> Path | RemotePath:
    """The root of a ``data_dir``: a resolved local :class:`~pathlib.Path`, or a :class:`RemotePath` for
    ``s3://bucket/prefix``.

    Raises:
        SMSCConfigError: a URI of another scheme, or without a bucket.
    """
    if isinstance(location, RemotePath):
        return location
    text = os.fspath(location)
    if "://" not in text:
        return Path(text).resolve()
    parsed = urllib.parse.urlsplit(text)
    if parsed.scheme.lower() not in REMOTE_SCHEMES:
        raise SMSCConfigError(
            f"data_dir {parsed.scheme}://… is not supported: use a local directory or s3://bucket/prefix"
        )
    if not parsed.netloc or "@" in parsed.netloc:
        raise SMSCConfigError(
            "data_dir must be s3://bucket/prefix (a bucket name, no credentials in the URI)"
        )
    if parsed.query or parsed.fragment:
        raise SMSCConfigError(
            "data_dir must be s3://bucket/prefix without '?' or '#': the endpoint, region and credentials come "
            "from the AWS variables (AWS_ENDPOINT_URL, AWS_REGION, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY)"
        )
    key = "/".join(p for p in (parsed.netloc, *parsed.path.split("/")) if p)
    return RemotePath(s3_filesystem(), key)


class RemotePath:
    """A path in an object store, with the subset of :class:`pathlib.Path` the storage layer uses.

    ``str()`` gives ``s3://bucket/key``, the form DuckDB reads once :func:`attach` registered the store on a
    connection; :attr:`key` is ``bucket/key``, the form pyarrow's filesystem takes.
    """

    __slots__ = ("fs", "key")
    scheme = "s3"

    def __init__(self, fs: pafs.FileSystem, key: str) -> None:
        self.fs = fs
        self.key = key.strip("/")

    # -- pure path ------------------------------------------------------------------------------------------

    def __truediv__(self, other: str | os.PathLike[str]) -> RemotePath:
        return RemotePath(self.fs, f"{self.key}/{os.fspath(other).strip('/')}")

    def __str__(self) -> str:
        return f"{self.scheme}://{self.key}"

    def __repr__(self) -> str:
        return f"RemotePath({str(self)!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RemotePath) and other.key == self.key

    def __hash__(self) -> int:
        return hash(("RemotePath", self.key))

    @property
    def name(self) -> str:
        return PurePosixPath(self.key).name

    @property
    def stem(self) -> str:
        return PurePosixPath(self.key).stem

    @property
    def parent(self) -> RemotePath:
        return RemotePath(self.fs, str(PurePosixPath(self.key).parent))

    # -- I/O ------------------------------------------------------------------------------------------------

    def _info(self) -> pafs.FileInfo:
        return self.fs.get_file_info(self.key)

    def exists(self) -> bool:
        """A file (object) of this name, or objects under it as a folder."""
        if self._info().type == pafs.FileType.File:
            return True
        return bool(self.fs.get_file_info(pafs.FileSelector(self.key, allow_not_found=True, recursive=False)))

    def is_file(self) -> bool:
        return self._info().type == pafs.FileType.File

    def version(self) -> str | None:
        """The object's ETag (it changes with every upload, unlike its one-second ``Last-Modified``), or
        ``None`` when there is no object: how a writer notices that another replaced it."""
        try:
            with self.fs.open_input_file(self.key) as handle:
                tag = handle.metadata().get("ETag") or handle.metadata().get("etag")
        except FileNotFoundError:
            return None
        return tag.decode() if isinstance(tag, bytes) else tag or ""

    def open(self, mode: str = "rb") -> Any:
        if mode in ("rb", "r"):
            try:
                return self.fs.open_input_file(self.key)
            except OSError as exc:  # a missing key, as the FileNotFoundError a local path would raise
                if "not found" in str(exc).lower() or "nosuchkey" in str(exc).lower():
                    raise FileNotFoundError(str(self)) from None
                raise
        if mode == "wb":
            # The object appears only when the stream is closed: never a partial object under this name.
            return self.fs.open_output_stream(self.key, metadata={})
        raise ValueError(f"RemotePath.open: unsupported mode {mode!r}")

    def read_bytes(self) -> bytes:
        with self.open("rb") as handle:
            return handle.read()

    def read_text(self, encoding: str = "utf-8") -> str:
        return self.read_bytes().decode(encoding)

    def write_bytes(self, data: Any) -> None:
        with self.open("wb") as handle:
            handle.write(data)

    def write_text(self, text: str, encoding: str = "utf-8") -> None:
        self.write_bytes(text.encode(encoding))

    def mkdir(self, parents: bool = False, exist_ok: bool = False) -> None:
        """Nothing to do: an object store has no folders (a key's prefix exists once an object is under it)."""

    def unlink(self, missing_ok: bool = False) -> None:
        try:
            self.fs.delete_file(self.key)
        except FileNotFoundError:
            if not missing_ok:
                raise

    def replace(self, target: RemotePath) -> RemotePath:
        """Move this object over ``target`` (a server-side copy, then the source is deleted): readers of
        ``target`` see the old object or this one."""
        self.fs.move(self.key, target.key)
        return target

    def iterdir(self) -> Iterator[RemotePath]:
        for info in self.fs.get_file_info(pafs.FileSelector(self.key, allow_not_found=True, recursive=False)):
            yield RemotePath(self.fs, info.path)

    def glob(self, pattern: str) -> Iterator[RemotePath]:
        """The files and folders under this path matching ``pattern`` (``*`` within one level, as
        :meth:`pathlib.Path.glob`), in key order."""
        depth = pattern.count("/") + 1
        infos = self.fs.get_file_info(pafs.FileSelector(self.key, allow_not_found=True, recursive=depth > 1))
        prefix = len(self.key) + 1
        found = sorted(
            info.path for info in infos
            if info.path[prefix:].count("/") + 1 == depth and fnmatch.fnmatchcase(info.path[prefix:], pattern)
        )
        for key in found:
            yield RemotePath(self.fs, key)

    def remove_tree(self) -> None:
        """Delete every object under this path (no error when there is none)."""
        try:
            self.fs.delete_dir(self.key)
        except (FileNotFoundError, OSError):
            for info in self.fs.get_file_info(pafs.FileSelector(self.key, allow_not_found=True, recursive=True)):
                if info.type == pafs.FileType.File:
                    self.fs.delete_file(info.path)


StorePath = Path | RemotePath


def arrow_file(path: StorePath) -> Any:
    """What pyarrow's readers take for ``path``: the local path, or an open file of the store."""
    return path.open("rb") if isinstance(path, RemotePath) else str(path)


def remove_tree(path: StorePath) -> None:
    """Delete a folder and everything under it, local or remote; nothing when it does not exist."""
    if isinstance(path, RemotePath):
        path.remove_tree()
    else:
        import shutil

        shutil.rmtree(path, ignore_errors=True)


def attach(conn: Any, root: StorePath) -> None:
    """Let a DuckDB connection read ``s3://`` paths of ``root``'s store (through the same pyarrow
    filesystem, wrapped for DuckDB's fsspec support); nothing for a local root."""
    if not isinstance(root, RemotePath):
        return
    from fsspec.implementations.arrow import ArrowFSWrapper

    conn.register_filesystem(ArrowFSWrapper(root.fs))
