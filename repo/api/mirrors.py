"""A channel's upstreams over the API (owners only): the fields of `repo mirror list --json`,
never the upstream's credentials."""

from __future__ import annotations

from .. import accounts
from ..db import get_db
from ..errors import NotFound
from ..mirror import settings
from .channels import CHANNEL
from .routing import endpoint, page

MIRROR = f"{CHANNEL}/mirrors/<any(pypi, cran):kind>"


def _listed(channel_id: int, kind: str) -> dict:
    for row in settings.listing(get_db(), channel_id):
        if row["type"] == kind:
            return row
    raise NotFound(f"The channel mirrors no {kind} upstream")


@endpoint("GET", f"{CHANNEL}/mirrors", "A channel's upstreams and their state (owners)",
          channel="owner", query=("offset", "limit"), answers={200: "MirrorList"})  # fmt: skip
def list_mirrors(channel):
    return page(settings.listing(get_db(), channel["id"]))


@endpoint("POST", f"{CHANNEL}/mirrors", "Make a channel mirror an upstream index (owners)",
          channel="owner", body="MirrorCreate", answers={201: "Mirror"},
          errors=(409,))  # fmt: skip
def create(channel, body: dict):
    # settings.create's `every` is the API's `sync_every`, the name `repo mirror list` shows.
    durations = {
        option: accounts.parse_duration(body[key])
        for key, option in (("ttl", "ttl"), ("min_age", "min_age"), ("sync_every", "every"))
        if key in body
    }
    quota = body.get("quota")
    settings.create(
        get_db(), channel["id"], body["type"], body["source"], mode=body.get("mode", "passive"),
        file_hosts=tuple(body.get("file_hosts", ())), username=body.get("username"),
        password=body.get("password"), sync=tuple(body.get("sync", ())),
        quota=settings.parse_size(quota) if isinstance(quota, str) else quota, **durations,
    )  # fmt: skip
    return _listed(channel["id"], body["type"]), 201


@endpoint("GET", MIRROR, "One upstream of a channel (owners)", channel="owner",
          answers={200: "Mirror"})  # fmt: skip
def show(channel, kind: str):
    return _listed(channel["id"], kind)


@endpoint("DELETE", MIRROR, "Stop mirroring an upstream (owners); cached files go with gc",
          channel="owner", answers={204: None})  # fmt: skip
def remove(channel, kind: str):
    settings.remove(get_db(), channel["id"], kind)
    return "", 204


@endpoint("POST", f"{MIRROR}/refresh", "Make every cached page of the upstream ask it again"
          " on its next request (owners)", channel="owner",
          answers={202: "Refresh"})  # fmt: skip
def refresh(channel, kind: str):
    upstream = settings.find(get_db(), channel["id"], kind)
    if upstream is None:
        raise NotFound(f"The channel mirrors no {kind} upstream")
    return {"stale_pages": settings.mark_stale(get_db(), upstream.id)}, 202
