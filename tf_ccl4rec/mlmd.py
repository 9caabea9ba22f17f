"""Reading a local pipeline's ML Metadata store (the pipeline summary and the report both need it)."""

import os

METADATA_FILE = "metadata.sqlite"


def open_store(pipeline_root: str):
    """The MetadataStore of `<pipeline_root>/metadata.sqlite`; a clear error when there is none."""
    from ml_metadata.metadata_store import metadata_store
    from tfx.orchestration.metadata import sqlite_metadata_connection_config

    path = os.path.abspath(os.path.join(pipeline_root, METADATA_FILE))
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no MLMD store at {path}: is {pipeline_root!r} a pipeline root?")
    connection = sqlite_metadata_connection_config(path)
    return metadata_store.MetadataStore(connection)


def latest_artifact(store, type_name: str):
    """The newest artifact of an MLMD type (by id), or None."""
    artifacts = store.get_artifacts_by_type(type_name)
    return max(artifacts, key=lambda a: a.id) if artifacts else None


def latest_output(store, type_name: str, node_id: str):
    """The newest artifact of `type_name` that a pipeline node (component id) output, or None.

    A pipeline with two Evaluators has two kinds of ModelEvaluation; the node's MLMD context
    ("<pipeline>.<node id>", TFX's naming) tells them apart. Cached executions count: they record
    the reused outputs.
    """
    from ml_metadata.proto import metadata_store_pb2

    contexts = [c for c in store.get_contexts_by_type("node") if c.name.endswith("." + node_id)]
    executions = [e.id for c in contexts for e in store.get_executions_by_context(c.id)]
    if not executions:
        return None
    ids = {
        e.artifact_id
        for e in store.get_events_by_execution_ids(executions)
        if e.type == metadata_store_pb2.Event.OUTPUT
    }
    wanted = store.get_artifact_type(type_name).id
    artifacts = [a for a in store.get_artifacts_by_id(list(ids)) if a.type_id == wanted]
    return max(artifacts, key=lambda a: a.id) if artifacts else None


def custom_property(artifact, key: str):
    """A string or int custom property of an MLMD artifact, or None."""
    if artifact is None or key not in artifact.custom_properties:
        return None
    value = artifact.custom_properties[key]
    return value.string_value or value.int_value


def artifact_path(uri: str, pipeline_root: str) -> str:
    """An artifact URI as a path readable from here.

    Absolute paths and URLs are returned as they are. A relative URI was recorded by a pipeline
    that ran with a relative root (older runs), relative to the directory it ran in; that directory
    is found as the ancestor of `pipeline_root` under which the URI exists. When none has it, the
    URI is returned made absolute against the current directory, for the caller's error message.
    """
    if not uri or "://" in uri or os.path.isabs(uri):
        return uri
    if os.path.exists(uri):
        return os.path.abspath(uri)
    directory = os.path.abspath(pipeline_root)
    while True:
        candidate = os.path.join(directory, uri)
        if os.path.exists(candidate):
            return candidate
        parent = os.path.dirname(directory)
        if parent == directory:
            return os.path.abspath(uri)
        directory = parent
