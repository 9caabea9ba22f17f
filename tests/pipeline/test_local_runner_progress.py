"""Progress lines of the local runner, read from MLMD executions (no pipeline run needed)."""


def test_progress_lines_come_from_mlmd_executions(tmp_path):
    """The local runner's progress thread reads node executions and their states from MLMD."""
    from ml_metadata.proto import metadata_store_pb2 as pb
    from tfx.orchestration.metadata import sqlite_metadata_connection_config

    from pipeline import local_runner

    connection = sqlite_metadata_connection_config(str(tmp_path / "metadata.sqlite"))
    lines = []
    progress = local_runner._Progress(total=3, echo=lambda line, **_: lines.append(line))
    watcher = local_runner._ExecutionWatcher(connection, "ccl4rec", progress)
    store = watcher._store
    exec_type = store.put_execution_type(pb.ExecutionType(name="Component"))
    node_type = store.put_context_type(pb.ContextType(name="node"))

    def start(node):
        (context_id,) = store.put_contexts([pb.Context(type_id=node_type, name=f"ccl4rec.{node}")])
        execution = pb.Execution(type_id=exec_type, last_known_state=pb.Execution.RUNNING)
        (execution_id,) = store.put_executions([execution])
        store.put_attributions_and_associations(
            [], [pb.Association(context_id=context_id, execution_id=execution_id)]
        )
        return execution_id

    def end(execution_id, state):
        (execution,) = store.get_executions_by_id([execution_id])
        execution.last_known_state = state
        store.put_executions([execution])

    gen = start("CCL4RecExampleGen")
    watcher.poll()
    assert lines == ["[1/3] CCL4RecExampleGen ..."]
    end(gen, pb.Execution.COMPLETE)
    stats = start("StatisticsGen")
    end(stats, pb.Execution.CACHED)
    trainer = start("Trainer")
    end(trainer, pb.Execution.FAILED)
    watcher.poll()
    watcher.poll()  # nothing new: no repeated lines
    assert [line.rsplit(" in ", 1)[0].rsplit(" after ", 1)[0] for line in lines] == [
        "[1/3] CCL4RecExampleGen ...",
        "[1/3] CCL4RecExampleGen done",
        "[2/3] StatisticsGen ...",
        "[2/3] StatisticsGen cached",
        "[3/3] Trainer ...",
        "[3/3] Trainer FAILED",
    ]
    assert lines[-1].endswith(" s") and progress.timings["StatisticsGen"][1] is True
    assert progress.timings["CCL4RecExampleGen"][1] is False and "Trainer" not in progress.timings
