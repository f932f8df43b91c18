"""The visibility classifier and the sharing diff: pure functions, checked directly."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from monolyth_pipelines.domain import permissions as p
from monolyth_pipelines.domain.drive import DRIVE_FILES_LIST_FIELDS, to_file_record
from monolyth_pipelines.domain.permissions import RANK, SharingContext, Visibility, classify, normalise

ME = "me@acme.example"


def user(email: str, role: str = "reader", **extra: Any) -> dict[str, Any]:
    return {"type": "user", "role": role, "emailAddress": email, **extra}


def test_each_class_from_the_grants_that_make_it() -> None:
    owner = user(ME, "owner")
    cases = {
        Visibility.PRIVATE: [owner],
        Visibility.SHARED_INTERNAL: [owner, user("ana@acme.example", "writer")],
        Visibility.DOMAIN: [owner, {"type": "domain", "role": "reader", "domain": "acme.example"}],
        Visibility.SHARED_EXTERNAL: [owner, user("bob@partner.example")],
        Visibility.ANYONE_WITH_LINK: [owner, {"type": "anyone", "role": "reader"}],
        Visibility.PUBLIC: [owner, {"type": "anyone", "role": "reader", "allowFileDiscovery": True}],
    }
    for expected, raw in cases.items():
        assert classify(normalise(raw), "acme.example") is expected, expected
    # Another organisation's whole domain, or a group outside, is external.
    assert (
        classify(
            normalise([owner, {"type": "domain", "role": "reader", "domain": "partner.example"}]),
            "acme.example",
        )
        is Visibility.SHARED_EXTERNAL
    )
    assert (
        classify(
            normalise([owner, {"type": "group", "role": "reader", "emailAddress": "all@x.example"}]),
            "acme.example",
        )
        is Visibility.SHARED_EXTERNAL
    )


def test_without_a_domain_every_share_is_external_and_gmail_is_no_organisation() -> None:
    two = normalise([user(ME, "owner"), user("ana@acme.example")])
    assert classify(two, None) is Visibility.SHARED_EXTERNAL
    assert classify(normalise([user(ME, "owner")]), None) is Visibility.PRIVATE
    assert p.account_domain("someone@gmail.com") is None
    assert p.account_domain("Someone@ACME.example") == "acme.example"


def test_normalised_permissions_are_stable_and_drop_what_names_nobody() -> None:
    raw = [
        user("B@acme.example", permissionDetails=[{"inherited": True}]),
        {"type": "anyone", "role": "reader", "allowFileDiscovery": False},
        user("b@acme.example", permissionDetails=[{"inherited": True}]),
        {"type": "user", "role": "reader"},  # no address
        {"type": "robot", "role": "reader", "emailAddress": "x@y.z"},
        "not a permission",
    ]
    assert (
        normalise(raw)
        == normalise(list(reversed(raw)))
        == [
            {"type": "anyone", "role": "reader", "discoverable": False, "inherited": False},
            {"type": "user", "role": "reader", "email": "b@acme.example", "inherited": True},
        ]
    )


GRANTS = st.lists(
    st.one_of(
        st.builds(
            lambda kind, who, dom, role: {"type": kind, "role": role, "emailAddress": f"{who}@{dom}"},
            st.sampled_from(["user", "group"]),
            st.sampled_from(["ana", "bob", "me"]),
            st.sampled_from(["acme.example", "partner.example"]),
            st.sampled_from(["owner", "writer", "reader"]),
        ),
        st.builds(
            lambda dom, disc: {"type": "domain", "role": "reader", "domain": dom, "allowFileDiscovery": disc},
            st.sampled_from(["acme.example", "partner.example"]),
            st.booleans(),
        ),
        st.builds(
            lambda disc: {"type": "anyone", "role": "reader", "allowFileDiscovery": disc}, st.booleans()
        ),
    ),
    max_size=6,
)


@given(GRANTS, GRANTS)
def test_adding_grants_never_makes_a_file_less_visible(first: list[Any], more: list[Any]) -> None:
    alone = classify(normalise(first), "acme.example")
    together = classify(normalise(first + more), "acme.example")
    assert RANK[together] >= RANK[alone]
    # Order and duplicates do not matter.
    assert classify(normalise(list(reversed(first + more + first))), "acme.example") is together


@given(GRANTS, GRANTS)
def test_the_sharing_diff_names_exactly_who_gained_and_lost(
    before_raw: list[Any], after_raw: list[Any]
) -> None:
    before, after = normalise(before_raw), normalise(after_raw)
    vb, va = classify(before, "acme.example"), classify(after, "acme.example")
    found = p.sharing_change(before, vb, after, va)
    grantees = lambda ps: [{k: v for k, v in x.items() if k != "inherited"} for x in ps]  # noqa: E731
    if found is None:
        assert grantees(before) == grantees(after) and vb == va
        return
    kind, changes = found
    assert changes["visibility"] == {"old": vb, "new": va}
    assert all(g in grantees(after) and g not in grantees(before) for g in changes["gained"])
    assert all(g in grantees(before) and g not in grantees(after) for g in changes["lost"])
    assert all(
        "email" not in g for g in changes["gained"] + changes["lost"] if g["type"] in ("anyone", "domain")
    )
    if RANK[va] != RANK[vb]:
        assert kind == ("shared" if RANK[va] > RANK[vb] else "unshared")
    assert kind in ("shared", "unshared")
    # Nothing known before: no event (a new row is "added", not "shared").
    assert p.sharing_change(None, None, after, va) is None


def test_a_drive_file_carries_its_sharing_in_meta() -> None:
    assert "permissions(" in DRIVE_FILES_LIST_FIELDS
    file = {
        "id": "f1",
        "name": "Contract",
        "mimeType": "application/pdf",
        "modifiedTime": "2026-01-01T00:00:00Z",
        "owners": [{"emailAddress": ME}],
        "permissions": [user(ME, "owner"), {"type": "anyone", "role": "reader"}],
    }
    meta = to_file_record(file, sharing=SharingContext(ME)).meta
    assert meta["visibility"] == "anyone_with_link" and meta["shared"] is True
    assert "permissions_complete" not in meta
    # A reader's view: Google withholds the list; the owner and the account are what is known.
    withheld = {**file, "owners": [{"emailAddress": "boss@partner.example"}]}
    del withheld["permissions"]
    meta = to_file_record(withheld, sharing=SharingContext(ME)).meta
    assert meta["visibility"] == "shared_external" and meta["permissions_complete"] is False
    # A shared-drive item without its list (permissions.list not answered) gets no sharing keys.
    in_drive = {**withheld, "driveId": "0Ax"}
    assert "visibility" not in to_file_record(in_drive, sharing=SharingContext(ME)).meta
