from __future__ import annotations

import pytest
import sqlalchemy as sa

from monolyth_pipelines.store import sync_state
from tests.store.helpers import new_account


def test_cursor_never_moves_backwards_and_a_sweep_commits_its_start_token(engine: sa.Engine) -> None:
    account = new_account(engine)
    with engine.begin() as conn:
        sync_state.begin_sweep(conn, account, "drive", sweep_cursor="100", reconcile=False)
        sync_state.save_sweep_page(conn, account, "drive", "page-2")
        state = sync_state.get_state(conn, account, "drive")
        assert (
            state and state.sweep_in_progress and state.cursor is None and state.sweep_page_token == "page-2"
        )
        sync_state.finish_sweep(conn, account, "drive")
        state = sync_state.get_state(conn, account, "drive")
        assert state and state.cursor == "100" and not state.sweep_in_progress
        sync_state.advance_cursor(conn, account, "drive", "120")
        with pytest.raises(sync_state.CursorRegressionError):
            sync_state.advance_cursor(conn, account, "drive", "99")
        assert sync_state.get_state(conn, account, "drive").cursor == "120"  # type: ignore[union-attr]
