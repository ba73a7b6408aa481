"""Kustomizations rendered to manifests, as ``kubectl kustomize DIR`` does.

The directory is under ``/packages`` or ``/workspace``. Bases, overlays,
components, patches, generators, images, ``namePrefix`` and ``commonLabels``
work as in kustomize, because the host runs the kustomize kubectl embeds. It
refuses (:class:`~stepbox_sdk.Forbidden`, naming the file and field) paths
that leave the step's filesystem, remote bases, ``helmCharts`` and plugins
that run programs. Rendering changes nothing: apply the result with
:func:`stepbox_sdk.kube.apply`, where every object passes the policy::

    from stepbox_sdk import kustomize, log

    for applied in kustomize.apply("/packages/overlays/prod"):
        log.info(applied.kubectl_name(), applied.action)
"""

from __future__ import annotations

from . import _wit, kube
from .errors import call


def build(directory: str) -> str:
    """Renders the kustomization in ``directory``; returns multi-document YAML."""
    return call(_wit.kustomize.build, directory)


def apply(directory: str) -> list[kube.Applied]:
    """Renders the kustomization in ``directory`` and applies the result in
    one :func:`stepbox_sdk.kube.apply` (every object checked before any is
    applied)."""
    return kube.apply(build(directory))
