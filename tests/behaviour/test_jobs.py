"""Jobs as Kubernetes runs them: Indexed completion, backoffLimitPerIndex and
maxFailedIndexes, podFailurePolicy, successPolicy, suspend, podReplacementPolicy and the
TTL-after-finished controller. The docs' manifests, scripted on the fake runtime (time
on a ManualClock); one Indexed Job and the docs' success policy on the process runtime."""

from __future__ import annotations

import asyncio
import itertools
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

import orchestra as oc
from orchestra.objects import Job, Pod
from tests.behaviour.test_workloads import eventually

pytestmark = pytest.mark.anyio

DOCS = Path(__file__).parent.parent / "manifests" / "docs"
FAKE = "fake.orchestra.dev/"
INDEX = "batch.kubernetes.io/job-completion-index"
TRACKING = "batch.kubernetes.io/job-tracking"


def docs_job(file: str, annotations: dict[str, str] | None = None,
             **spec: Any) -> dict[str, Any]:
    """A docs manifest, with fake-runtime script annotations on its pod template."""
    data: dict[str, Any] = yaml.safe_load((DOCS / file).read_text())
    template = data["spec"]["template"]
    if annotations:
        template.setdefault("metadata", {})["annotations"] = {
            FAKE + k: v for k, v in annotations.items()}
    data["spec"].update(spec)
    return data


def manual() -> oc.Cluster:
    return oc.Cluster(runtime="fake", nodes=1, clock=oc.ManualClock())


def job_pods(cluster: oc.Cluster, name: str) -> list[Pod]:
    pods = cluster.store.list("Pod", selector=f"batch.kubernetes.io/job-name={name}")
    return sorted(pods, key=lambda p: p.metadata.creation_timestamp or "")  # type: ignore


def job(cluster: oc.Cluster, name: str) -> Job:
    return cluster.store.get("job", name)  # type: ignore[return-value]


def cond(j: Job, type_: str) -> Any:
    return next((c for c in (j.status.conditions or ()) if c.type == type_), None) \
        if j.status else None


def finished(cluster: oc.Cluster, name: str, type_: str) -> bool:
    c = cond(job(cluster, name), type_)
    return bool(c is not None and c.status == "True")


def live(cluster: oc.Cluster, name: str) -> list[Pod]:
    return [p for p in job_pods(cluster, name) if p.metadata.deletion_timestamp is None
            and p.status is not None and p.status.phase in ("Pending", "Running")]


def running(cluster: oc.Cluster, name: str, n: int) -> bool:
    pods = live(cluster, name)
    return len(pods) == n and all(p.status is not None and p.status.phase == "Running"
                                  for p in pods)


def reasons(cluster: oc.Cluster, ref: str) -> list[str]:
    return [e.reason or "" for e in cluster.events(ref)]


# -- Indexed ------------------------------------------------------------------------------


async def test_indexed_job_runs_each_index_once_with_its_identity() -> None:
    async with manual() as cluster:
        manifest = docs_job("jobs-indexed-job.yaml",
                            {"input.exit-after": "0s", "worker.exit-after": "10s"})
        manifest["spec"]["template"]["spec"]["subdomain"] = "workers"
        await cluster.apply(manifest)
        # (the init container's 0 s is a timer too: the clock moves a little)
        await eventually(cluster, lambda: running(cluster, "indexed-job", 3), step=0.001)
        first = live(cluster, "indexed-job")
        assert sorted(p.metadata.annotations[INDEX] for p in first) == ["0", "1", "2"]
        for p in first:
            i = p.metadata.annotations[INDEX]
            assert re.fullmatch(rf"indexed-job-{i}-[a-z0-9]{{5}}", p.metadata.name or "")
            assert p.metadata.labels[INDEX] == i
            assert p.spec.hostname == f"indexed-job-{i}"
            assert p.spec.subdomain == "workers"
            assert TRACKING in (p.metadata.finalizers or ())
            for c in (*p.spec.init_containers, *p.spec.containers):
                env = {e.name: e for e in c.env or ()}
                ref = env["JOB_COMPLETION_INDEX"].value_from.field_ref
                assert ref.field_path == f"metadata.annotations['{INDEX}']"
        await cluster.clock.advance(10)  # type: ignore[attr-defined]

        def two_more() -> bool:
            j = job(cluster, "indexed-job")
            return bool(j.status and j.status.completed_indexes == "0-2"
                        and running(cluster, "indexed-job", 2))

        await eventually(cluster, two_more)
        assert sorted(p.metadata.annotations[INDEX] for p in live(cluster, "indexed-job")) \
            == ["3", "4"]
        await eventually(cluster, lambda: finished(cluster, "indexed-job", "Complete"),
                         step=5)
        j = job(cluster, "indexed-job")
        assert j.status.completed_indexes == "0-4" and j.status.succeeded == 5
        assert j.status.failed is None and j.status.active is None
        assert [c.type for c in j.status.conditions] == ["SuccessCriteriaMet", "Complete"]
        done = cond(j, "Complete")
        assert (done.reason, done.message) == ("CompletionsReached",
                                               "Reached expected number of succeeded pods")
        assert j.status.completion_time is not None
        pods = job_pods(cluster, "indexed-job")
        assert len(pods) == 5 and all(p.status.phase == "Succeeded" for p in pods)
        assert not any(TRACKING in (p.metadata.finalizers or ()) for p in pods)
        assert "Completed" in reasons(cluster, "job/indexed-job")
        lines = [" ".join(line.split()) for line in
                 cluster.describe("job/indexed-job").splitlines()]
        for line in ("Completion Mode: Indexed", "Completed Indexes: 0-4",
                     "Pods Statuses: 0 Active (0 Ready) / 5 Succeeded / 0 Failed",
                     "Duration: 20s"):
            assert line in lines, line


async def test_indexed_pods_resolve_as_index_hostnames_of_their_subdomain() -> None:
    async with oc.Cluster(runtime="fake", nodes=2) as cluster:
        await cluster.apply(DOCS / "jobs-pod-to-pod.yaml")
        await eventually(cluster, lambda: running(cluster, "example-job", 3))
        pods = {p.metadata.annotations[INDEX]: p for p in live(cluster, "example-job")}

        async def resolved() -> bool:
            for i, p in pods.items():
                if await cluster.resolve(f"example-job-{i}.headless-svc") != [
                        p.status.pod_ip]:
                    return False
            return True

        for _ in range(100):
            if await resolved():
                break
            await asyncio.sleep(0.05)
        assert await resolved()
        ep = await cluster.get("endpoints/headless-svc")
        assert sorted(a.hostname for a in ep.subsets[0].addresses) == [
            "example-job-0", "example-job-1", "example-job-2"]
        assert not ep.subsets[0].ports  # a headless Service without ports


async def test_backoff_limit_per_index_fails_indexes_after_their_own_retries() -> None:
    async with manual() as cluster:
        await cluster.apply(docs_job("jobs-backoff-limit-per-index.yaml",
                                     {"exit-after": "1s", "exit-code": "1"},
                                     completions=3, parallelism=3, maxFailedIndexes=None))
        name = "job-backoff-limit-per-index-example"
        await eventually(cluster, lambda: running(cluster, name, 3))
        await cluster.clock.advance(1)  # type: ignore[attr-defined]
        await eventually(cluster, lambda: all(p.status.phase == "Failed"
                                              for p in job_pods(cluster, name)))
        # The replacements wait out the pod failure back-off (10 s) of their index; the
        # failed pods keep their finalizer (uncounted) until then, as in Kubernetes.
        await cluster.clock.advance(9)  # type: ignore[attr-defined]
        assert len(job_pods(cluster, name)) == 3
        assert job(cluster, name).status.failed is None
        await cluster.clock.advance(1)  # type: ignore[attr-defined]
        await eventually(cluster, lambda: len(job_pods(cluster, name)) == 6)
        await eventually(cluster, lambda: job(cluster, name).status.failed == 3)
        second = job_pods(cluster, name)[3:]
        assert {p.metadata.annotations["batch.kubernetes.io/job-index-failure-count"]
                for p in second} == {"1"}
        await eventually(cluster, lambda: finished(cluster, name, "Failed"), step=1)
        j = job(cluster, name)
        assert j.status.failed_indexes == "0-2" and j.status.failed == 6
        assert j.status.completed_indexes is None
        for type_ in ("FailureTarget", "Failed"):
            c = cond(j, type_)
            assert (c.reason, c.message) == ("FailedIndexes", "Job has failed indexes")
        assert "FailedIndexes" in reasons(cluster, f"job/{name}")


async def test_max_failed_indexes_ends_the_job() -> None:
    async with manual() as cluster:
        # The docs' example with every index failing: the sixth failed index is one
        # more than maxFailedIndexes (5).
        await cluster.apply(docs_job("jobs-backoff-limit-per-index.yaml",
                                     {"exit-after": "1s", "exit-code": "1"}))
        name = "job-backoff-limit-per-index-example"
        await eventually(cluster, lambda: finished(cluster, name, "Failed"), step=1,
                         within=60)
        j = job(cluster, name)
        c = cond(j, "Failed")
        assert (c.reason, c.message) == (
            "MaxFailedIndexesExceeded",
            "Job has exceeded the specified maximal number of failed indexes")
        failed = j.status.failed_indexes.split(",") if "," in j.status.failed_indexes \
            else [j.status.failed_indexes]
        total = 0
        for part in failed:
            low, _, high = part.partition("-")
            total += int(high or low) - int(low) + 1
        assert total == 6
        assert not live(cluster, name)


async def test_pod_failure_policy_fail_job_on_an_exit_code() -> None:
    async with manual() as cluster:
        await cluster.apply(docs_job("jobs-pod-failure-policy.yaml",
                                     {"exit-after": "5s", "main.exit-code": "42"}))
        name = "job-pod-failure-policy-example"
        await eventually(cluster, lambda: running(cluster, name, 3))
        await cluster.clock.advance(5)  # type: ignore[attr-defined]
        await eventually(cluster, lambda: finished(cluster, name, "Failed"))
        j = job(cluster, name)
        target, failed = cond(j, "FailureTarget"), cond(j, "Failed")
        assert target.reason == failed.reason == "PodFailurePolicy"
        assert re.fullmatch(
            rf"Container main for pod default/{name}-[a-z0-9]{{5}} failed with exit code "
            r"42 matching FailJob rule at index 0", failed.message)
        assert failed.message == target.message
        # The pod that failed first ends the Job; the others are deleted (and counted).
        assert j.status.failed == 3 and not live(cluster, name)
        assert reasons(cluster, f"job/{name}").count("SuccessfulCreate") == 3
        assert "PodFailurePolicy" in reasons(cluster, f"job/{name}")


async def test_pod_failure_policy_ignores_a_disruption_and_replaces_the_pod() -> None:
    async with manual() as cluster:
        await cluster.apply(docs_job("jobs-pod-failure-policy.yaml",
                                     {"exit-after": "30s"}, completions=1, parallelism=1))
        name = "job-pod-failure-policy-example"
        await eventually(cluster, lambda: running(cluster, name, 1))
        victim = live(cluster, name)[0]
        # The Eviction API marks the pod DisruptionTarget and deletes it; the kubelet
        # writes its Failed phase, and the Ignore rule keeps it out of the count.
        await cluster.evict(victim.metadata.name)
        await eventually(cluster, lambda: (p := cluster.store.get_or_none(
            "Pod", victim.metadata.name)) is None or (p.status.phase == "Failed" and any(
                c.type == "DisruptionTarget" for c in p.status.conditions)))
        # The replacement comes after the pod failure back-off (10 s).
        await eventually(cluster, lambda: cluster.store.get_or_none(
            "Pod", victim.metadata.name) is None)
        await cluster.clock.advance(9)  # type: ignore[attr-defined]
        assert not live(cluster, name)
        await eventually(cluster, lambda: running(cluster, name, 1), step=1)
        j = job(cluster, name)
        assert j.status.failed is None  # ignored: not counted toward backoffLimit
        assert cluster.store.get_or_none("Pod", victim.metadata.name) is None
        await eventually(cluster, lambda: finished(cluster, name, "Complete"), step=5)
        assert job(cluster, name).status.succeeded == 1


async def test_pod_failure_policy_fail_index() -> None:
    async with manual() as cluster:
        await cluster.apply({
            "apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "fi"},
            "spec": {"completions": 2, "parallelism": 2, "completionMode": "Indexed",
                     "backoffLimitPerIndex": 3,
                     "podFailurePolicy": {"rules": [
                         {"action": "FailIndex", "onExitCodes": {"operator": "In",
                                                                 "values": [42]}},
                         {"action": "Count", "onExitCodes": {"operator": "NotIn",
                                                             "values": [42]}}]},
                     "template": {"metadata": {"annotations": {
                         FAKE + "exit-after": "1s", FAKE + "exit-code": "42"}},
                         "spec": {"restartPolicy": "Never", "containers": [
                             {"name": "main", "image": "busybox"}]}}}})
        await eventually(cluster, lambda: finished(cluster, "fi", "Failed"), step=1)
        j = job(cluster, "fi")
        assert j.status.failed_indexes == "0-1" and j.status.failed == 2
        assert len(job_pods(cluster, "fi")) == 2  # no retry despite backoffLimitPerIndex
        assert cond(j, "Failed").reason == "FailedIndexes"


async def test_backoff_limit_counts_failed_pods() -> None:
    async with manual() as cluster:
        await cluster.apply({
            "apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "bad"},
            "spec": {"backoffLimit": 2, "template": {
                "metadata": {"annotations": {FAKE + "exit-after": "1s",
                                             FAKE + "exit-code": "3"}},
                "spec": {"restartPolicy": "Never",
                         "containers": [{"name": "main", "image": "busybox"}]}}}})
        await eventually(cluster, lambda: finished(cluster, "bad", "Failed"), step=1,
                         within=30)
        j = job(cluster, "bad")
        assert j.status.failed == 3 and len(job_pods(cluster, "bad")) == 3
        c = cond(j, "Failed")
        assert (c.reason, c.message) == ("BackoffLimitExceeded",
                                         "Job has reached the specified backoff limit")
        # 10 s, then 20 s of back-off between the three pods.
        starts = [p.metadata.creation_timestamp for p in job_pods(cluster, "bad")]
        gaps = [oc_time(b) - oc_time(a) for a, b in itertools.pairwise(starts)]
        assert gaps[0] >= 11 and gaps[1] >= 21


def oc_time(stamp: str | None) -> float:
    from orchestra.objects._scalars import parse_time

    return parse_time(stamp or "")


# -- successPolicy, TTL, suspend, podReplacementPolicy -------------------------------------


async def test_success_policy_ends_the_job_early() -> None:
    async with manual() as cluster:
        await cluster.apply({
            "apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "sp"},
            "spec": {"completions": 5, "parallelism": 2, "completionMode": "Indexed",
                     "successPolicy": {"rules": [{"succeededCount": 2}]},
                     "template": {"metadata": {"annotations": {FAKE + "exit-after": "10s"}},
                                  "spec": {"restartPolicy": "Never", "containers": [
                                      {"name": "main", "image": "busybox"}]}}}})
        await eventually(cluster, lambda: running(cluster, "sp", 2))
        await cluster.clock.advance(10)  # type: ignore[attr-defined]
        await eventually(cluster, lambda: finished(cluster, "sp", "Complete"))
        j = job(cluster, "sp")
        assert [c.type for c in j.status.conditions] == ["SuccessCriteriaMet", "Complete"]
        for type_ in ("SuccessCriteriaMet", "Complete"):
            c = cond(j, type_)
            assert (c.reason, c.message) == ("SuccessPolicy", "Matched rules at index 0")
        assert j.status.completed_indexes == "0-1" and len(job_pods(cluster, "sp")) == 2


async def test_ttl_after_finished_deletes_the_job_and_its_pods() -> None:
    async with manual() as cluster:
        await cluster.apply(docs_job("jobs-ttl-pi.yaml", {"exit-after": "1s"}))
        await eventually(cluster, lambda: finished(cluster, "pi-with-ttl", "Complete"),
                         step=1)
        assert len(job_pods(cluster, "pi-with-ttl")) == 1
        assert "TTL Seconds After Finished: 100" in [
            " ".join(line.split()) for line in cluster.describe("job/pi-with-ttl").splitlines()]
        done = oc_time(cond(job(cluster, "pi-with-ttl"), "Complete").last_transition_time)
        clock = cluster.clock
        assert isinstance(clock, oc.ManualClock)
        await clock.advance(done + 99.5 - clock.now())
        await asyncio.sleep(0.2)
        assert cluster.store.get_or_none("Job", "pi-with-ttl") is not None
        await clock.advance(0.5)

        def deleting() -> bool:
            j = cluster.store.get_or_none("Job", "pi-with-ttl")
            return j is None or j.metadata.deletion_timestamp is not None

        await eventually(cluster, deleting)
        # Foreground deletion: the garbage collector removes the pods, then the Job.
        await eventually(cluster, lambda: cluster.store.get_or_none("Job", "pi-with-ttl")
                         is None and not job_pods(cluster, "pi-with-ttl"), step=1)


async def test_suspend_deletes_pods_and_resume_restarts_with_a_new_start_time() -> None:
    async with manual() as cluster:
        await cluster.apply({
            "apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "s"},
            "spec": {"suspend": True, "parallelism": 2, "completions": 4, "template": {
                "spec": {"restartPolicy": "Never",
                         "containers": [{"name": "main", "image": "busybox"}]}}}})
        await eventually(cluster, lambda: cond(job(cluster, "s"), "Suspended") is not None)
        j = job(cluster, "s")
        c = cond(j, "Suspended")
        assert (c.status, c.reason, c.message) == ("True", "JobSuspended", "Job suspended")
        assert j.status.start_time is None and not job_pods(cluster, "s")
        assert "Suspended" in reasons(cluster, "job/s")

        await cluster.patch("job/s", {"spec": {"suspend": False}})
        await eventually(cluster, lambda: running(cluster, "s", 2))
        j = job(cluster, "s")
        c = cond(j, "Suspended")
        assert (c.status, c.reason, c.message) == ("False", "JobResumed", "Job resumed")
        first_start = j.status.start_time
        assert first_start is not None and "Resumed" in reasons(cluster, "job/s")

        await cluster.clock.advance(60)  # type: ignore[attr-defined]
        await cluster.patch("job/s", {"spec": {"suspend": True}})
        await eventually(cluster, lambda: not job_pods(cluster, "s"))
        j = job(cluster, "s")
        assert cond(j, "Suspended").status == "True"
        assert j.status.failed is None and j.status.active is None  # not failures
        await cluster.patch("job/s", {"spec": {"suspend": False}})
        await eventually(cluster, lambda: running(cluster, "s", 2))
        assert oc_time(job(cluster, "s").status.start_time) >= oc_time(first_start) + 60


@pytest.mark.parametrize("policy", ["TerminatingOrFailed", "Failed"])
async def test_pod_replacement_policy(policy: str) -> None:
    async with manual() as cluster:
        await cluster.apply({
            "apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "r"},
            "spec": {"podReplacementPolicy": policy, "template": {
                "metadata": {"annotations": {FAKE + "ignore-sigterm": "true"}},
                "spec": {"restartPolicy": "Never", "terminationGracePeriodSeconds": 20,
                         "containers": [{"name": "main", "image": "busybox"}]}}}})
        await eventually(cluster, lambda: running(cluster, "r", 1))
        old = live(cluster, "r")[0]
        await cluster.delete(f"pod/{old.metadata.name}")
        await eventually(cluster, lambda: job(cluster, "r").status.terminating == 1)
        if policy == "TerminatingOrFailed":
            # A terminating pod counts as failed at once; its replacement comes after the
            # 10 s back-off, while the old pod is still terminating.
            assert job(cluster, "r").status.failed == 1
            await cluster.clock.advance(10)  # type: ignore[attr-defined]
            await eventually(cluster, lambda: running(cluster, "r", 1))
            j = job(cluster, "r")
            assert j.status.terminating == 1 and j.status.active == 1
        else:
            # Only a Failed pod is replaced: not while it terminates (20 s grace), then
            # after the back-off from when it failed.
            for _ in range(28):
                await cluster.clock.advance(1)  # type: ignore[attr-defined]
                assert not live(cluster, "r")
                assert job(cluster, "r").status.active is None
            await eventually(cluster, lambda: running(cluster, "r", 1), step=1)
            j = job(cluster, "r")
            assert j.status.failed == 1 and j.status.terminating == 0
        await eventually(cluster, lambda: job(cluster, "r").status.terminating == 0
                         and cluster.store.get_or_none("Pod", old.metadata.name) is None,
                         step=1)


def _job_errors(**spec: Any) -> set[str]:
    with pytest.raises(oc.Invalid) as info:
        Job.model_validate({"metadata": {"name": "x"}, "spec": {**spec, "template": {
            "spec": {"restartPolicy": "Never",
                     "containers": [{"name": "main", "image": "i"}]}}}})
    return {str(e) for e in info.value.errors}


@pytest.mark.parametrize("propagation", ["Background", "Foreground", "Orphan"])
async def test_deleting_a_job_releases_its_pods(propagation: str) -> None:
    async with oc.Cluster(runtime="fake", nodes=1) as cluster:
        await cluster.apply({
            "apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "d"},
            "spec": {"parallelism": 2, "completions": 2, "template": {"spec": {
                "restartPolicy": "Never", "terminationGracePeriodSeconds": 0,
                "containers": [{"name": "main", "image": "busybox"}]}}}})
        await eventually(cluster, lambda: running(cluster, "d", 2))
        await cluster.delete("job/d", propagation=propagation)
        await eventually(cluster, lambda: cluster.store.get_or_none("Job", "d") is None)
        if propagation == "Orphan":
            # The orphans keep running, without the Job's tracking finalizer.
            await eventually(cluster, lambda: len(job_pods(cluster, "d")) == 2 and not any(
                TRACKING in (p.metadata.finalizers or ()) for p in job_pods(cluster, "d")))
            assert running(cluster, "d", 2)
        else:
            await eventually(cluster, lambda: not job_pods(cluster, "d"))


def test_a_created_job_gets_its_generated_selector_at_once() -> None:
    store = oc.Store()
    spec = {"template": {"spec": {"restartPolicy": "Never",
                                  "containers": [{"name": "c", "image": "i"}]}}}
    j = store.create({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "g"},
                      "spec": spec})
    uid = j.metadata.uid
    assert j.spec.selector.match_labels == {"batch.kubernetes.io/controller-uid": uid}
    assert j.spec.template.metadata.labels == {
        "batch.kubernetes.io/controller-uid": uid, "controller-uid": uid,
        "batch.kubernetes.io/job-name": "g", "job-name": "g"}
    with pytest.raises(oc.Invalid, match="`selector` not auto-generated"):
        store.create({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "h"},
                      "spec": {**spec, "selector": {"matchLabels": {"app": "x"}},
                               "template": {**spec["template"],
                                            "metadata": {"labels": {"app": "x"}}}}})
    assert store.get_or_none("Job", "h") is None


async def test_job_updates_refused_as_the_api_server_refuses_them() -> None:
    async with oc.Cluster(runtime="fake", nodes=1) as cluster:
        template = {"spec": {"restartPolicy": "Never",
                             "containers": [{"name": "main", "image": "busybox"}]}}
        await cluster.apply({"apiVersion": "batch/v1", "kind": "Job",
                             "metadata": {"name": "u"},
                             "spec": {"completions": 3, "template": template}})
        await cluster.wait_for("job/u", lambda j: j.status and j.status.active, timeout=20)
        with pytest.raises(oc.Invalid) as info:
            await cluster.patch("job/u", {"spec": {"completions": 4}})
        assert {str(e) for e in info.value.errors} == {
            "spec.completions: Invalid value: 4: field is immutable"}
        with pytest.raises(oc.Invalid, match=r"spec\.template: Invalid value: .*: field is "
                                             r"immutable"):
            await cluster.patch("job/u", {"spec": {"template": {"spec": {"containers": [
                {"name": "main", "image": "busybox:2"}]}}}})
        with pytest.raises(oc.Invalid, match=r'spec\.completionMode: Invalid value: '
                                             r'"Indexed": field is immutable'):
            await cluster.patch("job/u", {"spec": {"completionMode": "Indexed"}})
        await cluster.patch("job/u", {"spec": {"parallelism": 2}})  # mutable

        # Elastic Indexed Jobs: completions change together with an equal parallelism.
        await cluster.apply({"apiVersion": "batch/v1", "kind": "Job",
                             "metadata": {"name": "e"},
                             "spec": {"completions": 2, "parallelism": 2,
                                      "completionMode": "Indexed", "template": template}})
        with pytest.raises(oc.Invalid, match=r"spec\.completions: Invalid value: 3: can only "
                                             r"be modified in tandem with spec\.parallelism"):
            await cluster.patch("job/e", {"spec": {"completions": 3}})
        await cluster.patch("job/e", {"spec": {"completions": 3, "parallelism": 3}})

        # A suspended Job that never started may change its scheduling directives only.
        await cluster.apply({"apiVersion": "batch/v1", "kind": "Job",
                             "metadata": {"name": "s"},
                             "spec": {"suspend": True, "template": template}})
        await cluster.patch("job/s", {"spec": {"template": {
            "metadata": {"labels": {"queue": "a"}},
            "spec": {"nodeSelector": {"pool": "batch"}}}}})
        with pytest.raises(oc.Invalid, match=r"spec\.template: .*field is immutable"):
            await cluster.patch("job/s", {"spec": {"template": {"spec": {
                "containers": [{"name": "main", "image": "busybox:2"}]}}}})


async def test_elastic_indexed_job_scales_down_with_its_completions() -> None:
    async with manual() as cluster:
        await cluster.apply({
            "apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "el"},
            "spec": {"completions": 4, "parallelism": 4, "completionMode": "Indexed",
                     "template": {"metadata": {"annotations": {FAKE + "exit-after": "10s"}},
                                  "spec": {"restartPolicy": "Never", "containers": [
                                      {"name": "main", "image": "busybox"}]}}}})
        await eventually(cluster, lambda: running(cluster, "el", 4))
        await cluster.patch("job/el", {"spec": {"completions": 2, "parallelism": 2}})
        # The pods of indexes 2 and 3 are out of range now: deleted, and not failures.
        await eventually(cluster, lambda: sorted(
            p.metadata.annotations[INDEX] for p in live(cluster, "el")) == ["0", "1"])
        await eventually(cluster, lambda: finished(cluster, "el", "Complete"), step=5)
        j = job(cluster, "el")
        assert j.status.completed_indexes == "0-1" and j.status.succeeded == 2
        assert j.status.failed is None


async def test_a_job_managed_by_another_controller_is_left_alone() -> None:
    async with oc.Cluster(runtime="fake", nodes=1) as cluster:
        template = {"spec": {"restartPolicy": "Never",
                             "containers": [{"name": "main", "image": "busybox"}]}}
        await cluster.apply([
            {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name},
             "spec": {"managedBy": by, "template": template}}
            for name, by in (("theirs", "example.com/queue"),
                             ("ours", "kubernetes.io/job-controller"))])
        await eventually(cluster, lambda: running(cluster, "ours", 1))
        await asyncio.sleep(0.3)
        assert not job_pods(cluster, "theirs") and job(cluster, "theirs").status is None


def test_describe_caps_long_index_lists_as_kubectl() -> None:
    from orchestra.present._describe_kinds import _cap_indexes

    long = ",".join(str(i) for i in range(0, 80, 2))
    assert _cap_indexes("") == "<none>"
    assert _cap_indexes("0-4") == "0-4"
    capped = _cap_indexes(long)
    assert capped.endswith(",...") and long.startswith(capped[:-3])
    assert len(capped) - 4 >= 50 > len(capped) - 8


async def test_job_validation_as_the_api_server() -> None:
    assert _job_errors(backoffLimitPerIndex=1, maxFailedIndexes=1) == {
        "spec.backoffLimitPerIndex: Invalid value: 1: requires indexed completion mode",
        "spec.maxFailedIndexes: Invalid value: 1: requires indexed completion mode"}
    assert _job_errors(completionMode="Indexed", completions=2, maxFailedIndexes=1) == {
        "spec.backoffLimitPerIndex: Required value: when maxFailedIndexes is specified"}
    assert "spec.successPolicy" in " ".join(_job_errors(successPolicy={"rules": [
        {"succeededCount": 1}]}))
    rule = {"action": "FailIndex", "onExitCodes": {"containerName": "other",
                                                   "operator": "In", "values": [1]}}
    assert _job_errors(podFailurePolicy={"rules": [rule]}) == {
        'spec.podFailurePolicy.rules[0].action: Invalid value: "FailIndex": requires the '
        "backoffLimitPerIndex to be set",
        'spec.podFailurePolicy.rules[0].onExitCodes.containerName: Invalid value: "other": '
        "must be one of the container or initContainer names in the pod template"}
    assert _job_errors(podFailurePolicy={"rules": [
        {"action": "Count", "onExitCodes": {"operator": "NotIn", "values": []}}]}) == {
        "spec.podFailurePolicy.rules[0].onExitCodes.values: Invalid value: []: at least "
        "one value is required"}


# -- process runtime -----------------------------------------------------------------------


@pytest.fixture
def needs_sh() -> None:
    if shutil.which("sh") is None or shutil.which("python3") is None:
        pytest.skip("needs sh and python3")


async def test_indexed_job_on_processes_reads_its_index(needs_sh: None) -> None:
    async with oc.Cluster(runtime="process", nodes=1) as cluster:
        await cluster.apply({
            "apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "ix"},
            "spec": {"completions": 3, "parallelism": 3, "completionMode": "Indexed",
                     "template": {"spec": {"restartPolicy": "Never", "containers": [{
                         "name": "main", "image": "busybox",
                         "command": ["sh", "-c",
                                     'echo "index=$JOB_COMPLETION_INDEX host=$(hostname)"'
                                     ]}]}}}})
        j = await cluster.wait_for("job/ix", "Complete", timeout=60)
        assert j.status.completed_indexes == "0-2"
        for p in job_pods(cluster, "ix"):
            i = p.metadata.annotations[INDEX]
            assert (await cluster.logs(p.metadata.name)).startswith(f"index={i}")


async def test_docs_success_policy_on_processes(needs_sh: None) -> None:
    async with oc.Cluster(runtime="process", nodes=1) as cluster:
        await cluster.apply(DOCS / "jobs-success-policy.yaml")
        j = await cluster.wait_for("job/job-success", "Complete", timeout=60)
        assert "2" in (j.status.completed_indexes or "").replace("-", ",").split(",") \
            or j.status.completed_indexes == "2"
        c = cond(j, "Complete")
        assert (c.reason, c.message) == ("SuccessPolicy", "Matched rules at index 0")
