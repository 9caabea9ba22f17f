"""``models.config``: the ModelServerConfig text proto read by TF Serving and ``serving.server``.

Written with the ``tensorflow_serving.config`` protos (not a string template) so the file is
always something ``tensorflow_model_server --model_config_file=...`` parses. Example::

    model_config_list {
      config {
        name: "ccl4rec"
        base_path: "/srv/push/ccl4rec"
        model_platform: "tensorflow"
        model_version_policy { specific { versions: 3 versions: 4 } }
        version_labels { key: "canary" value: 4 }
        version_labels { key: "stable" value: 3 }
      }
    }
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from google.protobuf import text_format
from tensorflow_serving.config import file_system_storage_path_source_pb2, model_server_config_pb2

DEFAULT_MODEL_NAME = "ccl4rec"
CONFIG_FILE = "models.config"


@dataclass(frozen=True)
class VersionPolicy:
    """Which versions to serve: the ``latest`` N, ``specific`` versions, or ``all``.

    Attributes:
      kind: "latest", "specific" or "all".
      num_versions: N for "latest".
      versions: the versions for "specific".
    """

    kind: str = "latest"
    num_versions: int = 1
    versions: tuple[int, ...] = ()

    def select(self, available: Sequence[int]) -> list[int]:
        """The versions of ``available`` this policy serves, ascending."""
        available = sorted(set(available))
        if self.kind == "all":
            return available
        if self.kind == "specific":
            return [v for v in available if v in self.versions]
        return available[-self.num_versions :]

    def to_proto(self):
        """The ``FileSystemStoragePathSourceConfig.ServableVersionPolicy`` proto."""
        policy = file_system_storage_path_source_pb2.FileSystemStoragePathSourceConfig
        proto = policy.ServableVersionPolicy()
        if self.kind == "all":
            proto.all.SetInParent()
        elif self.kind == "specific":
            proto.specific.versions.extend(self.versions)
        else:
            proto.latest.num_versions = self.num_versions
        return proto

    @classmethod
    def from_proto(cls, proto) -> VersionPolicy:
        """Inverse of ``to_proto``; an unset policy is TF Serving's default, latest 1."""
        which = proto.WhichOneof("policy_choice")
        if which == "all":
            return cls("all")
        if which == "specific":
            return cls("specific", versions=tuple(proto.specific.versions))
        if which == "latest":
            return cls("latest", num_versions=proto.latest.num_versions or 1)
        return cls()

    def __str__(self) -> str:
        if self.kind == "specific":
            return "specific:" + ",".join(map(str, self.versions))
        return "all" if self.kind == "all" else f"latest:{self.num_versions}"


def parse_version_policy(text: str) -> VersionPolicy:
    """Parses ``latest:N``, ``specific:3,4`` or ``all``.

    Raises:
      ValueError: on anything else (the message shows the accepted forms).
    """
    kind, _, arg = text.strip().partition(":")
    try:
        if kind == "all" and not arg:
            return VersionPolicy("all")
        if kind == "latest":
            n = int(arg or 1)
            if n >= 1:
                return VersionPolicy("latest", num_versions=n)
        if kind == "specific":
            versions = tuple(sorted({int(v) for v in arg.split(",") if v.strip()}))
            if versions and min(versions) >= 0:
                return VersionPolicy("specific", versions=versions)
    except ValueError:
        pass
    raise ValueError(f"bad version policy {text!r}: use latest:N (N>=1), specific:3,4 or all")


def parse_labels(text: str | None) -> dict[str, int]:
    """Parses ``stable=3,canary=4`` into ``{"stable": 3, "canary": 4}`` (None/"" = no labels)."""
    labels = {}
    for item in (text or "").split(","):
        if not item.strip():
            continue
        name, sep, version = item.partition("=")
        if not sep or not name.strip() or not version.strip().isdigit():
            raise ValueError(f"bad version label {item!r}: use name=version, e.g. stable=3")
        labels[name.strip()] = int(version)
    return labels


def build_config(
    base_path: str,
    model_name: str = DEFAULT_MODEL_NAME,
    policy: VersionPolicy | str = "latest:1",
    labels: Mapping[str, int] | None = None,
):
    """Builds a one-model ``ModelServerConfig``.

    Args:
      base_path: ``<base>/<model_name>``, the directory holding the integer version dirs.
      model_name: the name clients put in ``ModelSpec.name``.
      policy: a ``VersionPolicy`` or its text form (``latest:1``, ``specific:3,4``, ``all``).
      labels: ``{label: version}``, e.g. ``{"stable": 3, "canary": 4}``.

    Returns:
      A ``tensorflow_serving.config.model_server_config_pb2.ModelServerConfig``.
    """
    policy = parse_version_policy(policy) if isinstance(policy, str) else policy
    config = model_server_config_pb2.ModelServerConfig()
    model = config.model_config_list.config.add()
    model.name = model_name
    model.base_path = base_path if os.path.isabs(base_path) else os.path.abspath(base_path)
    model.model_platform = "tensorflow"
    model.model_version_policy.CopyFrom(policy.to_proto())
    for label, version in (labels or {}).items():
        model.version_labels[label] = int(version)
    return config


def write_config(path: str, config) -> str:
    """Writes ``config`` as a text proto to ``path`` (atomically: temp file + rename).

    Returns:
      ``path``.
    """
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "w") as f:
        f.write(text_format.MessageToString(config))
    os.replace(tmp, path)
    return path


def write_push_config(
    push_base: str,
    model_name: str = DEFAULT_MODEL_NAME,
    policy: VersionPolicy | str = "latest:1",
    labels: Mapping[str, int] | None = None,
    server_push_base: str | None = None,
) -> str:
    """Writes ``<push_base>/models.config`` for the model pushed to ``<push_base>/<model_name>/``.

    Args:
      push_base: the Pusher's base directory.
      model_name: the model (and sub-directory) name.
      policy: version policy, e.g. ``latest:1`` or ``specific:3,4``.
      labels: ``{label: version}``, e.g. ``{"stable": 3, "canary": 4}``.
      server_push_base: ``push_base`` as the server sees it (e.g. ``/models`` inside the
        ``tensorflow/serving`` container); default ``push_base``.

    Returns:
      The config path, for ``tensorflow_model_server --model_config_file=`` or
      ``ccl4rec serve --model-config-file``.
    """
    base = server_push_base or os.path.abspath(push_base)
    config = build_config(os.path.join(base, model_name), model_name, policy, labels)
    return write_config(os.path.join(push_base, CONFIG_FILE), config)


def read_config(path: str):
    """Parses a ``models.config`` text proto into a ``ModelServerConfig``.

    Raises:
      ValueError: if the file is not a valid ModelServerConfig text proto.
    """
    with open(path) as f:
        text = f.read()
    try:
        return text_format.Parse(text, model_server_config_pb2.ModelServerConfig())
    except text_format.ParseError as err:
        raise ValueError(f"{path} is not a ModelServerConfig text proto: {err}") from err


def single_model(config):
    """(name, base_path, VersionPolicy, labels) of a config's only model.

    Raises:
      ValueError: if the config does not list exactly one model (this server serves one).
    """
    models = config.model_config_list.config
    if len(models) != 1:
        raise ValueError(f"expected exactly one model in the config, found {len(models)}")
    m = models[0]
    return (
        m.name,
        m.base_path,
        VersionPolicy.from_proto(m.model_version_policy),
        dict(m.version_labels),
    )
