"""Registry rules: registration, heartbeats, reconciliation and liveness."""

from __future__ import annotations

import logging
from datetime import timedelta

from opentelemetry import trace

from ktrdr.credentials import hash_secret, new_secret, secret_matches
from ktrdr.operations.model import IllegalTransition, OperationStatus
from ktrdr.operations.schemas import Progress
from ktrdr.operations.service import OperationService
from ktrdr.operations.store import OperationNotFound
from ktrdr.registry.schemas import (
    Heartbeat,
    HeartbeatReply,
    RegistrationReply,
    WorkerPublic,
    WorkerRegistration,
    WorkerState,
)

log = logging.getLogger(__name__)
tracer = trace.get_tracer("ktrdr.registry")


class WorkerNotRegistered(LookupError):
    def __init__(self, worker_id: str):
        super().__init__(
            f"worker {worker_id!r} is not registered (or was marked lost); register again "
            "with POST /api/v1/workers/register"
        )


class WorkerCredentialRequired(PermissionError):
    """No usable credential for this worker: it must (re-)register to get one (401)."""

    def __init__(self, worker_id: str):
        super().__init__(
            f"worker {worker_id!r} has no credential on record; register again with "
            "POST /api/v1/workers/register to get one"
        )


class WrongWorkerCredential(PermissionError):
    """A credential that is not the one issued to this worker's current instance (403)."""

    def __init__(self, worker_id: str):
        super().__init__(
            f"this credential does not belong to the current instance of worker "
            f"{worker_id!r} (an impersonation, or an instance superseded by a newer "
            "registration); nothing was changed"
        )


class WorkerService:
    def __init__(
        self,
        operations: OperationService,
        *,
        heartbeat_timeout_s: float,
        dispatch_grace_s: float,
    ):
        self.operations = operations
        self.store = operations.store
        self.heartbeat_timeout = timedelta(seconds=heartbeat_timeout_s)
        self.dispatch_grace = timedelta(seconds=dispatch_grace_s)

    def register(self, registration: WorkerRegistration) -> RegistrationReply:
        """(Re-)register a worker, issue its instance a fresh credential, and reconcile
        what it says it runs with the store."""
        with tracer.start_as_current_span("workers.register") as span:
            span.set_attribute("worker.id", registration.worker_id)
            span.set_attribute("worker.kinds", [k.value for k in registration.kinds])
            known, previous = self.store.worker_credential_hash(registration.worker_id)
            # Only the instance that holds the current credential (or the first one, or one
            # registered before credentials existed) may claim a running operation: a new
            # process cannot be running its predecessor's job, and anyone else with the
            # shared token could otherwise register under a busy worker's id and adopt it.
            same_instance = (
                not known or previous is None or secret_matches(registration.credential, previous)
            )
            credential = new_secret()
            worker = self.store.register_worker(
                worker_id=registration.worker_id,
                kinds=[k.value for k in registration.kinds],
                url=str(registration.url).rstrip("/"),
                version=registration.version,
                now=self.operations.clock(),
                credential_hash=hash_secret(credential),
            )
            log.info("worker %s registered at %s", worker.id, worker.url)
            claimed, progress = registration.current_operation_id, registration.progress
            refused: list[str] = []
            if not same_instance:
                worker = self._forget_predecessor(worker)
                if claimed is not None:
                    log.warning(
                        "worker %s: a new instance claims %s without its predecessor's "
                        "credential; not believed",
                        worker.id,
                        claimed,
                    )
                    refused, claimed, progress = [claimed], None, None
            self.operations.events.worker_registered(worker.id, [k.value for k in worker.kinds])
            reply = self._reconcile(worker, claimed, progress)
            self.operations.on_queue_change()
            return RegistrationReply(
                cancel_operation_ids=refused + reply.cancel_operation_ids,
                worker_credential=credential,
            )

    def _forget_predecessor(self, worker: WorkerPublic) -> WorkerPublic:
        """A new instance replaced the one that held the assignment: that job is not
        running here, and no grace is due (the dispatch grace covers a start request in
        flight to the *same* instance). Re-queue it now, so a report signed with the new
        credential cannot complete the predecessor's attempt."""
        held = worker.current_operation_id
        if held is None:
            return worker
        self._requeue(held, worker.id, f"worker {worker.id} restarted (a new instance registered)")
        self.store.release_worker(worker.id, held)  # the ids are captured before the change
        return worker.model_copy(update={"current_operation_id": None})

    def authenticate(self, worker_id: str, credential: str) -> None:
        """The caller must hold the credential issued to `worker_id`'s current instance."""
        known, stored = self.store.worker_credential_hash(worker_id)
        if not known:
            raise WorkerNotRegistered(worker_id)
        if stored is None:
            raise WorkerCredentialRequired(worker_id)
        if not secret_matches(credential, stored):
            log.warning("refused a call for worker %s: wrong credential", worker_id)
            raise WrongWorkerCredential(worker_id)

    def heartbeat(self, worker_id: str, beat: Heartbeat) -> HeartbeatReply:
        worker = self.store.heartbeat(worker_id, self.operations.clock(), draining=beat.draining)
        if worker is None:
            raise WorkerNotRegistered(worker_id)
        return self._reconcile(worker, beat.current_operation_id, beat.progress)

    def _reconcile(
        self, worker: WorkerPublic, reported_id: str | None, progress: Progress | None
    ) -> HeartbeatReply:
        cancel: list[str] = []
        if reported_id is not None:
            if self._owns(worker.id, reported_id):
                if worker.current_operation_id != reported_id:
                    # The registry forgot (e.g. re-registration): the store is the truth.
                    self.store.set_worker_assignment(worker.id, reported_id)
                if progress is not None:
                    self.operations.record_progress(reported_id, worker.id, progress)
            else:
                # Cancelled, finished, or re-queued to someone else: the worker must stop.
                cancel.append(reported_id)
        assigned = worker.current_operation_id
        if assigned is not None and assigned != reported_id:
            self._settle_missing(worker, assigned)
        return HeartbeatReply(cancel_operation_ids=cancel)

    def _owns(self, worker_id: str, operation_id: str) -> bool:
        try:
            op = self.store.get_operation(operation_id)
        except OperationNotFound:
            return False
        return op.status == OperationStatus.RUNNING and op.worker_id == worker_id

    def _settle_missing(self, worker: WorkerPublic, operation_id: str) -> None:
        """The registry says the worker runs `operation_id`; the worker says it does not."""
        try:
            op = self.store.get_operation(operation_id)
        except OperationNotFound:
            self.store.release_worker(worker.id, operation_id)
            return
        # A start request may still be in flight: believe "idle" only after a grace.
        started = op.started_at or op.updated_at
        in_grace = self.operations.clock() - started <= self.dispatch_grace
        if op.status.is_terminal:
            # Its final report was handled, or it was cancelled and the worker moved on;
            # but not an operation cancelled just after it was sent: a heartbeat taken
            # before the worker accepted the start says "idle", and the worker then runs
            # it until it is told to stop. Freed then, it was sent new work and answered
            # 409 "busy" to each try, which spent that work's attempts (seen in CI).
            cancelled_here = op.status == OperationStatus.CANCELLED and op.worker_id == worker.id
            if cancelled_here and in_grace:
                return
            if self.store.release_worker(worker.id, operation_id):
                self.operations.on_queue_change()
            return
        if op.status == OperationStatus.RUNNING and op.worker_id == worker.id and not in_grace:
            self._requeue(op.id, worker.id, f"worker {worker.id} no longer runs it (restarted?)")

    def _requeue(self, operation_id: str, worker_id: str, reason: str) -> None:
        """Re-queue the operation if `worker_id` still runs it (it may have moved on)."""
        try:
            op = self.store.get_operation(operation_id)
            if op.status == OperationStatus.RUNNING and op.worker_id == worker_id:
                self.operations.requeue_or_fail(op, reason)
        except (IllegalTransition, OperationNotFound):
            log.info("operation %s changed while being re-queued; left as is", operation_id)

    def deregister(self, worker_id: str) -> None:
        """A clean shutdown: gone now, not after the heartbeat timeout."""
        worker = self.store.get_worker(worker_id)
        if worker is None:
            raise WorkerNotRegistered(worker_id)
        self.store.mark_worker_gone(
            worker_id, WorkerState.OFFLINE, "deregistered on shutdown", stale_before=None
        )
        if worker.current_operation_id:
            self._requeue(worker.current_operation_id, worker_id, f"worker {worker_id} shut down")
        self.operations.on_queue_change()

    def list_workers(self, *, include_gone: bool = False) -> list[WorkerPublic]:
        with tracer.start_as_current_span("workers.list") as span:
            workers = self.store.list_workers(include_gone=include_gone)
            span.set_attribute("workers.count", len(workers))
            return workers

    def free_orphaned_workers(self) -> list[tuple[str, str]]:
        """Enforce the registry invariant (see Store.free_orphaned_workers); log each leak."""
        freed = self.store.free_orphaned_workers()
        for worker_id, operation_id in freed:
            log.warning(
                "worker %s was held by %s, which is not running on it; freed",
                worker_id,
                operation_id,
                extra={"operation_id": operation_id},
            )
        return freed

    def mark_silent_workers_lost(self) -> list[str]:
        """Workers silent past the timeout are lost; their operations re-queued or failed."""
        now = self.operations.clock()
        cutoff = now - self.heartbeat_timeout
        lost: list[str] = []
        for worker in self.store.stale_workers(cutoff):
            silent_s = (now - worker.last_heartbeat_at).total_seconds()
            reason = f"worker {worker.id} lost: no heartbeat for {silent_s:.1f}s"
            if not self.store.mark_worker_gone(
                worker.id, WorkerState.LOST, reason, stale_before=cutoff
            ):
                continue  # it beat in the meantime
            log.warning(reason)
            lost.append(worker.id)
            self.operations.events.worker_lost([k.value for k in worker.kinds])
            if worker.current_operation_id:
                self._requeue(worker.current_operation_id, worker.id, reason)
                self.store.release_worker(worker.id, worker.current_operation_id)
        return lost
