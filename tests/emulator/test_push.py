"""The emulator's push side as Google's: Gmail watches filtered by label, Pub/Sub's OIDC tokens
signed with keys served in Google's certificate format."""

from __future__ import annotations

import json
import urllib.request

import pytest
from google.auth import jwt

from monolyth_pipelines.emulator import GoogleEmulator
from monolyth_pipelines.emulator.errors import ApiError
from monolyth_pipelines.emulator.oidc import CERTS_PATH
from monolyth_pipelines.emulator.push import GmailWatch, PushHub


def test_a_label_watch_hears_its_labels_mail_and_relabels_only() -> None:
    watch = GmailWatch("a@example.com", "projects/p/topics/t", 0, ("Label_1",), "include")
    assert watch.wants("messageAdded", {"INBOX", "Label_1"}, set())
    assert not watch.wants("messageAdded", {"INBOX", "UNREAD"}, set())
    assert watch.wants("labelAdded", {"Label_1"}, {"Label_1"})
    # A read/unread flip on mail in the label changes UNREAD only.
    assert not watch.wants("labelRemoved", {"Label_1"}, {"UNREAD"})
    exclude = GmailWatch("a@example.com", "projects/p/topics/t", 0, ("SPAM",), "exclude")
    assert exclude.wants("messageAdded", {"INBOX"}, set())
    assert not exclude.wants("messageAdded", {"SPAM"}, set())
    assert GmailWatch("a@example.com", "projects/p/topics/t", 0).wants("labelRemoved", set(), {"UNREAD"})


def test_watch_takes_google_s_label_filter_fields() -> None:
    hub = PushHub(lambda: 1000.0)
    body = {"topicName": "projects/p/topics/t", "labelIds": ["Label_1"], "labelFilterBehavior": "INCLUDE"}
    hub.gmail_watch("a@example.com", body, 5)
    assert hub.gmail_watches["a@example.com"].label_ids == ("Label_1",)
    # The deprecated labelFilterAction counts when labelFilterBehavior is absent.
    hub.gmail_watch("a@example.com", {"topicName": "projects/p/topics/t", "labelFilterAction": "exclude"}, 5)
    assert hub.gmail_watches["a@example.com"].behavior == "exclude"
    with pytest.raises(ApiError):
        hub.gmail_watch("a@example.com", {"topicName": "projects/p/topics/t", "labelIds": "Label_1"}, 5)


def test_push_tokens_verify_against_the_certificates_the_emulator_serves() -> None:
    emu = GoogleEmulator(seed=1)
    with emu.serve() as base_url, urllib.request.urlopen(f"{base_url}{CERTS_PATH}", timeout=10) as response:
        certs = json.loads(response.read())
        assert "max-age" in response.headers["Cache-Control"]
    audience = "https://hooks.example/webhooks/gmail"
    token = emu.push.oidc.token(audience=audience, email="push@p.iam.gserviceaccount.com")
    header = jwt.decode_header(token)
    assert header["alg"] == "RS256" and header["kid"] in certs
    claims = jwt.decode(token, certs=certs, audience=audience)
    assert claims["iss"] == "https://accounts.google.com" and claims["email_verified"] is True
    assert claims["exp"] - claims["iat"] == 3600
