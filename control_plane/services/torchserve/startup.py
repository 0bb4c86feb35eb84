"""Register the archives named in ``torchserve.load_models``/``load_workflows`` at start.

TorchServe cannot load workflows at startup (its issues #1755, #2615); here both lists are
registered once, idempotently: entries already registered (e.g. after a restart, where the DB
and the reconciler bring them back) are skipped.
"""

from __future__ import annotations

import logging

from sqlalchemy.orm import Session, sessionmaker

from control_plane.errors import DomainError
from control_plane.integrations.serve_types import ServeGateway
from control_plane.services.torchserve.models import RegisterModel, TorchServeModelService
from control_plane.services.torchserve.workflows import TorchServeWorkflowService
from control_plane.settings import Settings

logger = logging.getLogger(__name__)


def _split(entry: str) -> tuple[str | None, str]:
    name, sep, url = entry.partition("=")
    return (name.strip(), url.strip()) if sep else (None, entry.strip())


def register_startup_archives(
    session_factory: sessionmaker[Session], gateway: ServeGateway, settings: Settings
) -> list[str]:
    """Register configured models then workflows; returns the names registered now."""
    done: list[str] = []
    for entry in settings.torchserve.load_models:
        name, url = _split(entry)
        with session_factory() as session:
            service = TorchServeModelService(session, gateway, settings)
            if name and service.exists(name):
                continue
            try:
                service.register(
                    RegisterModel(
                        url=url,
                        model_name=name,
                        initial_workers=1,
                        synchronous=False,
                        loaded_at_startup=True,
                    )
                )
                done.append(name or url)
            except DomainError as exc:
                logger.info("startup model %s not registered: %s", entry, exc.message)
            except Exception:  # never let one archive stop the control plane from starting
                logger.exception("startup model %s failed", entry)
    for entry in settings.torchserve.load_workflows:
        name, url = _split(entry)
        with session_factory() as session:
            workflows = TorchServeWorkflowService(session, gateway, settings)
            if name and workflows.exists(name):
                continue
            try:
                workflows.register(url, name, synchronous=False, loaded_at_startup=True)
                done.append(name or url)
            except DomainError as exc:
                logger.info("startup workflow %s not registered: %s", entry, exc.message)
            except Exception:  # never let one archive stop the control plane from starting
                logger.exception("startup workflow %s failed", entry)
    return done
