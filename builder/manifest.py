"""The pack manifest (prebake-pack/1): what a pack holds and how to check it.

The pack's identity is the sha256 of the manifest's bytes, so `dumps` is canonical: the same
manifest always serialises to the same bytes.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import re
import types
import typing
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from .errors import IntegrityError, UsageError
from .gate import ancestors, is_normal

FORMAT = "prebake-pack/1"
MANIFEST_NAME = "manifest.json"


ENTRY_WEIGHT = 32 * 1024
"""What creating one member weighs against its bytes in a restore: about 17 us on these machines,
the time to decompress and write 32 KiB. Packing cuts parts of even weight, and the restore
starts the heaviest parts first."""


@dataclass(frozen=True)
class Part:
    name: str
    size: int
    sha256: str
    members: int
    bytes: int
    store_ids: dict[str, str] = field(default_factory=dict)

    @property
    def weight(self) -> int:
        """What restoring the part costs once its bytes are here: its tar bytes and its members."""
        return self.bytes + self.members * ENTRY_WEIGHT


@dataclass(frozen=True)
class Platform:
    """The runtime a pack's compiled bits need; None fields are not checked."""

    os: str | None = None
    arch: str | None = None
    python: str | None = None
    abi: str | None = None
    glibc: str | None = None
    cuda: str | None = None


@dataclass(frozen=True)
class Env:
    prepend: dict[str, tuple[str, ...]] = field(default_factory=dict)
    set: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class CondaPrefix:
    """A conda environment's prefix records: the files that hold a placeholder where the folder the
    environment is restored at must be written (scripts, configs, compiled-in paths), as conda-pack
    classified them. Paths are relative to `prefix`, the pack's one prefix; each names the index of
    its placeholder. Text files get every placeholder replaced; binary ones get NUL-padded C strings
    of the same length, so a binary's placeholder bounds how long a new prefix may be."""

    prefix: str
    placeholders: tuple[str, ...]
    text: dict[str, int] = field(default_factory=dict)
    binary: dict[str, int] = field(default_factory=dict)
    python: str = ""
    """The environment's Python as X.Y ("" when it has none): its packages import in a kernel of
    the same version only."""
    site_packages: str = ""
    pinned: str = ""
    """Why the environment cannot move from `prefix` ("" when it can)."""

    @property
    def longest_prefix(self) -> int | None:
        """The longest prefix the binaries can take (None: no binary limits it)."""
        lengths = [len(self.placeholders[i].encode()) for i in set(self.binary.values())]
        return min(lengths) if lengths else None


@dataclass(frozen=True)
class Manifest:
    """`symlinks` lists every symlink the parts hold: parts extract in parallel, so each part must
    know up front which paths it may not write through."""

    name: str
    version: str
    target: str
    prefixes: tuple[str, ...]
    parts: tuple[Part, ...]
    platform: Platform | None = None
    env: Env = field(default_factory=Env)
    check: str | None = None
    whiteouts: tuple[str, ...] = ()
    symlinks: tuple[str, ...] = ()
    created_by: dict[str, str] = field(default_factory=dict)
    stats: dict[str, int] = field(default_factory=dict)
    conda: CondaPrefix | None = None

    def dumps(self) -> bytes:
        data = {"format": FORMAT, **asdict(self)}
        if self.conda is None:  # packs without one keep the bytes, so the digests, they had
            del data["conda"]
        return (json.dumps(data, sort_keys=True, indent=1, ensure_ascii=False) + "\n").encode()

    @property
    def digest(self) -> str:
        return digest_of(self.dumps())

    @property
    def packed_size(self) -> int:
        return sum(part.size for part in self.parts)

    def with_store_ids(self, store: str, ids: dict[str, str]) -> Manifest:
        """A copy recording where each part lives in `store` (for stores that address by id)."""
        parts = tuple(replace(p, store_ids={**p.store_ids, store: ids[p.name]}) for p in self.parts)
        return replace(self, parts=parts)


def digest_of(manifest_bytes: bytes) -> str:
    return "sha256:" + hashlib.sha256(manifest_bytes).hexdigest()


MAX_MANIFEST_BYTES = 16 * 2**20
"""A manifest or lock larger than this is refused unread (a real one is a few KiB per part)."""

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,127}")
_VARIABLE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")
_SHA256 = re.compile(r"[0-9a-f]{64}")


def is_name(value: str) -> bool:
    """Whether `value` may name a pack or a part: a file name in any folder, never a path."""
    return bool(_NAME.fullmatch(value))


# Variables a pack may not set (nor prepend to) without the lock's or the user's leave: they run
# code when some other program starts (loaders, interpreters, shells, git, pagers), redirect
# traffic or trust (proxies, indexes, endpoints, CA bundles), or steer prebake itself. Patterns,
# not names: a list of names always misses one. Recipes set arbitrary configuration variables
# (FOO_HOME, MPLBACKEND, ...), which is why this is a deny list and not an allow-list.
_NEEDS_LEAVE = re.compile(
    r"LD_.*|DYLD_.*|PYTHON.*|PERL.*|RUBY.*|LUA_.*|NODE_.*|.*_OPTIONS|.*_OPTS|GIT_.*|PIP_.*|UV_.*|CONDA_.*|PREBAKE_.*"
    r"|.*PROXY.*|.*_COMMAND|.*ASKPASS.*|SSL.*|OPENSSL_.*|.*CERT.*|.*_CA_.*|.*CA_BUNDLE|.*_ENDPOINT|.*_URL|.*INDEX.*"
    r"|HOME|SHELL|USER|LOGNAME|TMPDIR|IFS|PS4|ENV|BASH_.*|PROMPT_COMMAND|SHELLOPTS|BASHOPTS|GCONV_PATH|GLIBC_TUNABLES"
    r"|MALLOC_.*|HOSTALIASES|LOCALDOMAIN|RES_OPTIONS|NLSPATH|PAGER|.*_PAGER|EDITOR|VISUAL|BROWSER|LESS.*",
    re.IGNORECASE,
)
_SEARCH_PATHS = frozenset({"PATH", "LD_LIBRARY_PATH", "PYTHONPATH"})
"""Prepended to with the pack's own folders (checked by validate), never set outright."""
_HARMLESS = frozenset({"PYTHONUNBUFFERED", "PYTHONDONTWRITEBYTECODE"})


def env_needs_leave(name: str, prepend: bool) -> bool:
    """Whether a pack needs the lock's or the user's leave to set (or prepend to) variable `name`."""
    if name in _SEARCH_PATHS:
        return not prepend
    return name not in _HARMLESS and _NEEDS_LEAVE.fullmatch(name) is not None


def loads(data: bytes, source: str = "manifest.json") -> Manifest:
    """A manifest from untrusted bytes: every field checked for type and sense before it is used,
    with a one-line error naming the field."""
    if len(data) > MAX_MANIFEST_BYTES:
        msg = f"{source} is larger than {MAX_MANIFEST_BYTES} bytes; it is not a prebake manifest"
        raise IntegrityError(msg)
    try:
        raw: Any = json.loads(data)
    except (ValueError, RecursionError) as e:  # JSONDecodeError, UnicodeDecodeError, ints past 4300 digits
        msg = f"{source} is not a prebake manifest (not JSON: {e}); point prebake at a pack folder or its manifest.json"
        raise IntegrityError(msg) from e
    if not isinstance(raw, dict) or raw.get("format") != FORMAT:
        found = raw.get("format") if isinstance(raw, dict) else type(raw).__name__
        msg = f"{source} has format {found!r}, this prebake reads {FORMAT!r}; upgrade prebake or rebuild the pack"
        raise UsageError(msg)
    manifest = _typed(Manifest, {k: v for k, v in raw.items() if k != "format"}, "", source)
    validate(manifest, source)
    return manifest


def _typed(kind: Any, value: Any, where: str, source: str) -> Any:
    """`value` (parsed JSON) as type `kind` (the dataclasses above and the types they use), or a
    one-line IntegrityError naming the field.

    Written here rather than taken from pydantic (73 ms to import and build a model on these
    machines, against a restore of about a second) or msgspec (not on Colab, so another download):
    the manifest's types are a handful, and their annotations drive this.
    """
    def wrong(expected: str) -> IntegrityError:
        shown = repr(value) if len(repr(value)) < 60 else type(value).__name__
        return IntegrityError(f"{source}: {where or 'the manifest'} must be {expected}, found {shown}; the manifest is damaged or hostile")

    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        return _typed(next(a for a in args if a is not type(None)), value, where, source)
    if kind is str:
        if not isinstance(value, str) or "\0" in value or not value.isprintable() and _unencodable(value):
            raise wrong("a string of UTF-8 text")
        return value
    if kind is int:
        if type(value) is not int or value < 0:
            raise wrong("a whole number >= 0")
        return value
    if origin is tuple:
        if not isinstance(value, list):
            raise wrong("a list")
        return tuple(_typed(args[0], item, f"{where}[{i}]", source) for i, item in enumerate(value))
    if origin is dict:
        if not isinstance(value, dict):
            raise wrong("an object")
        return {_typed(str, k, f"{where} key", source): _typed(args[1], v, f"{where}.{k}", source) for k, v in value.items()}
    if dataclasses.is_dataclass(kind):
        if not isinstance(value, dict):
            raise wrong("an object")
        hints, fields = _schema(kind)
        unknown = sorted(set(value) - set(fields))
        if unknown:
            raise IntegrityError(f"{source}: {where or 'the manifest'} has unknown fields {unknown}; upgrade prebake or rebuild the pack")
        given = {}
        for name, f in fields.items():
            if name in value:
                given[name] = _typed(hints[name], value[name], f"{where}.{name}".lstrip("."), source)
            elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise IntegrityError(f"{source}: {where or 'the manifest'} lacks the field {name!r}; the manifest is damaged")
        return kind(**given)
    raise TypeError(kind)  # a type the dataclasses above do not use


def _unencodable(text: str) -> bool:
    """Lone surrogates (JSON can spell them) fail later, in a path or os.environ: refuse them here."""
    try:
        text.encode()
    except UnicodeEncodeError:
        return True
    return False


@functools.cache
def _schema(kind: type) -> tuple[dict[str, Any], dict[str, dataclasses.Field]]:
    """A dataclass's resolved type hints and fields, once per class (a manifest may list
    thousands of parts; resolving the hints is most of each one's cost)."""
    return typing.get_type_hints(kind), {f.name: f for f in dataclasses.fields(kind)}


def _refuse(source: str, what: str) -> UsageError:
    return UsageError(f"{source}: {what}; the manifest is damaged or hostile, do not restore it")


def validate(manifest: Manifest, source: str) -> None:
    """Refuse manifests whose names, paths or environment could act outside the pack's prefixes."""
    for label, value in (("name", manifest.name), ("version", manifest.version)):
        if not is_name(value):
            raise _refuse(source, f"{label} {value!r} must be letters, digits and . _ + - (at most 128)")
    if not manifest.prefixes:
        raise _refuse(source, "it lists no prefixes")
    for prefix in manifest.prefixes:
        if not is_normal(prefix) or ":" in prefix:
            raise _refuse(source, f"prefix {prefix!r} must be a normalised absolute path below /, without ':'")
    prefixes = set(manifest.prefixes)
    if len(prefixes) != len(manifest.prefixes):
        raise _refuse(source, "a prefix is listed twice")
    for prefix in manifest.prefixes:
        outer = next((a for a in ancestors(prefix) if a != prefix and a in prefixes), None)
        if outer:
            raise _refuse(source, f"prefix {prefix} lies inside prefix {outer}")
    names = [part.name for part in manifest.parts]
    for part in manifest.parts:
        if not is_name(part.name) or part.name.endswith((".done", ".journal")):
            raise _refuse(source, f"part name {part.name!r} is not a plain file name")
        if not _SHA256.fullmatch(part.sha256):
            raise _refuse(source, f"{part.name} has sha256 {part.sha256!r}, not 64 lowercase hex digits")
    if len(set(names)) != len(names):
        raise _refuse(source, "a part is listed twice")
    def in_prefixes(path: str, strictly: bool = False) -> bool:
        return is_normal(path) and any(a in prefixes for a in ancestors(path) if not (strictly and a == path))

    for path in manifest.symlinks:
        if not in_prefixes(path, strictly=True):
            raise _refuse(source, f"symlink {path!r} must be a normalised path strictly below one of the prefixes")
    for path in manifest.whiteouts:  # one equal to a prefix may remove a file, never a folder (the gate decides)
        if not in_prefixes(path):
            raise _refuse(source, f"whiteout {path!r} must be a normalised path at or below one of the prefixes")
    symlinks = set(manifest.symlinks)
    for path in manifest.whiteouts:
        link = next((a for a in ancestors(path) if a != path and a in symlinks), None)
        if link:
            raise _refuse(source, f"whiteout {path} lies below the pack's own symlink {link}")
    for var, paths in manifest.env.prepend.items():
        if not _VARIABLE.fullmatch(var):
            raise _refuse(source, f"env.prepend has the invalid variable name {var!r}")
        for path in paths:
            if not in_prefixes(path) or ":" in path or not symlinks.isdisjoint(ancestors(path)):
                raise _refuse(source, f"env.prepend.{var} entry {path!r} must be an absolute path under the pack's prefixes, "
                                      "not through one of its symlinks")
    for var in manifest.env.set:
        if not _VARIABLE.fullmatch(var):
            raise _refuse(source, f"env.set has the invalid variable name {var!r}")
    if manifest.conda is not None:
        _validate_conda(manifest.conda, manifest.prefixes, symlinks, source)


SYSTEM_FOLDERS = frozenset({
    "/", "/bin", "/boot", "/content", "/dev", "/etc", "/home", "/lib", "/lib64", "/media", "/mnt", "/opt", "/proc",
    "/root", "/run", "/sbin", "/srv", "/sys", "/tmp", "/usr", "/usr/bin", "/usr/include", "/usr/lib", "/usr/lib64",
    "/usr/local", "/usr/local/bin", "/usr/local/lib", "/usr/sbin", "/usr/share", "/var",
})
"""Folders a conda environment never takes over (condacolab installs over /usr/local; prebake gives
an environment a folder of its own)."""
_MIN_PLACEHOLDER = 8
"""Shorter placeholders would let a text file grow many times over when rewritten (conda's and
rattler-build's are paths of 30 to 255 bytes)."""
_PYTHON_VERSION = re.compile(r"(\d{1,3}\.\d{1,3})?")


def _validate_conda(conda: CondaPrefix, prefixes: tuple[str, ...], symlinks: set[str], source: str) -> None:
    if prefixes != (conda.prefix,):
        raise _refuse(source, f"conda.prefix {conda.prefix!r} must be the pack's one prefix")
    if conda.prefix in SYSTEM_FOLDERS:
        raise _refuse(source, f"conda.prefix {conda.prefix} is a system folder, never an environment's")
    for i, placeholder in enumerate(conda.placeholders):
        if not is_normal(placeholder) or len(placeholder.encode()) < _MIN_PLACEHOLDER:
            raise _refuse(source, f"conda.placeholders[{i}] must be an absolute path of {_MIN_PLACEHOLDER} bytes or more")
    if not _PYTHON_VERSION.fullmatch(conda.python):
        raise _refuse(source, f"conda.python {conda.python!r} must be X.Y or empty")
    if not conda.pinned.isprintable():
        raise _refuse(source, "conda.pinned must be one line of text")
    for kind, records in (("text", conda.text), ("binary", conda.binary)):
        for path, index in records.items():
            if not is_normal("/" + path):
                raise _refuse(source, f"conda.{kind} path {path!r} must be a normalised path relative to the prefix")
            if index >= len(conda.placeholders):
                raise _refuse(source, f"conda.{kind}.{path} names placeholder {index}, there are {len(conda.placeholders)}")
    if (conda.longest_prefix or len(conda.prefix.encode())) < len(conda.prefix.encode()):
        raise _refuse(source, "a binary placeholder is shorter than conda.prefix, so its binaries cannot hold it")
    if conda.site_packages:
        site = f"{conda.prefix}/{conda.site_packages}"
        if not is_normal(site) or ":" in site or not symlinks.isdisjoint(ancestors(site)):
            raise _refuse(source, f"conda.site_packages {conda.site_packages!r} must be a normalised relative path, "
                                  "without ':', not through one of the pack's symlinks")
