"""The SDK's delete and restore, as MlflowClient has them, against a live server."""

from __future__ import annotations

import pytest
import steward

pytestmark = pytest.mark.live


def test_delete_and_restore_runs_and_experiments(steward_server, account):
    with steward.Client(url=steward_server.url, token=account.token, project=account.project) as client:
        client.create_run(None, "trash-sdk", name="kept")
        gone = client.create_run(None, "trash-sdk", name="gone")
        deleted = client.delete_run(gone.id[:8])
        assert deleted.info["lifecycle"] == "deleted"
        assert [r.name for r in client.search_runs(experiment="trash-sdk")] == ["kept"]
        trashed = client.search_runs(experiment="trash-sdk", view_type="deleted_only")
        assert [r.name for r in trashed] == ["gone"]
        steward.configure(url=steward_server.url, token=account.token, project=account.project)
        try:
            listed = steward.search_runs(experiment_names=["trash-sdk"], run_view_type="DELETED_ONLY",
                                         output_format="list")
        finally:
            steward.reset_configuration()
        assert [r.name for r in listed] == ["gone"]
        assert client.restore_run(gone.id).info["lifecycle"] == "active"

        experiment = client.get_experiment_by_name("trash-sdk")
        client.delete_experiment(experiment["id"])
        assert client.get_experiment_by_name("trash-sdk") is None
        with pytest.raises(steward.ConflictError, match="trash"):
            client.create_run(None, "trash-sdk")
        client.restore_experiment(experiment["id"])
        assert {r.name for r in client.search_runs(experiment="trash-sdk")} == {"kept", "gone"}
