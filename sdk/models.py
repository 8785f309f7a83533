"""Typed wire models (pydantic v2) for every Colonies JSON schema (protocol §5), with wire names."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from enum import IntEnum
from typing import Any

from pydantic import Field

# The file-system models live in models_cfs; re-exported so `sdk.models` names every schema.
from .models_cfs import File, FileData, Label, Reference, S3Object, Snapshot
from .wire import ZERO_TIME, NullDict, NullList, Time, WireModel

__all__ = [
    "Allocations",
    "Attribute",
    "AttributeType",
    "Capabilities",
    "Colony",
    "Conditions",
    "Cron",
    "Edge",
    "Executor",
    "ExecutorState",
    "File",
    "FileData",
    "Fs",
    "FuncSpec",
    "Function",
    "Generator",
    "Gpu",
    "GraphNode",
    "Hardware",
    "Label",
    "Log",
    "Process",
    "ProcessGraph",
    "ProcessState",
    "Project",
    "Reference",
    "S3Object",
    "Snapshot",
    "SnapshotMount",
    "Software",
    "Statistics",
    "SyncDirMount",
    "User",
    "WireModel",
    "WorkflowSpec",
    "ZERO_TIME",
]


class ProcessState(IntEnum):
    WAITING = 0
    RUNNING = 1
    SUCCESS = 2
    FAILED = 3
    CANCELLED = 4

    @property
    def is_final(self) -> bool:
        return self in (ProcessState.SUCCESS, ProcessState.FAILED, ProcessState.CANCELLED)


class ExecutorState(IntEnum):
    PENDING = 0
    APPROVED = 1
    REJECTED = 2
    UNREGISTERED = 3


class AttributeType(IntEnum):
    IN = 0
    OUT = 1
    ERR = 2
    ENV = 3


class Colony(WireModel):
    colonyid: str = ""
    name: str = ""


class User(WireModel):
    colonyname: str = ""
    userid: str = ""
    name: str = ""
    email: str = ""
    phone: str = ""


class Gpu(WireModel):
    name: str = ""
    mem: str = ""
    count: int = 0
    nodecount: int = 0


class Hardware(WireModel):
    model: str = ""
    nodes: int = 0
    cpu: str = ""
    cores: int = 0
    mem: str = ""
    storage: str = ""
    gpu: Gpu = Field(default_factory=Gpu)
    platform: str = ""
    architecture: str = ""
    network: NullList[str] = Field(default_factory=list)


class Software(WireModel):
    name: str = ""
    type: str = ""
    version: str = ""


class Capabilities(WireModel):
    hardware: NullList[Hardware] = Field(default_factory=list)
    software: NullList[Software] = Field(default_factory=list)


class Project(WireModel):
    allocatedcpu: int = 0
    usedcpu: int = 0
    allocatedgpu: int = 0
    usedgpu: int = 0
    allocatedstorage: int = 0
    usedstorage: int = 0


class Allocations(WireModel):
    projects: NullDict[Project] = Field(default_factory=dict)


class Executor(WireModel):
    executorid: str = ""
    executortype: str = ""
    executorname: str = ""
    colonyname: str = ""
    state: ExecutorState = ExecutorState.PENDING
    requirefuncreg: bool = False
    commissiontime: Time = ZERO_TIME
    lastheardfromtime: Time = ZERO_TIME
    locationname: str = ""
    capabilities: Capabilities = Field(default_factory=Capabilities)
    allocations: Allocations = Field(default_factory=Allocations)


class Function(WireModel):
    functionid: str = ""
    executorname: str = ""
    executortype: str = ""
    colonyname: str = ""
    funcname: str = ""
    counter: int = 0
    minwaittime: float = 0.0
    maxwaittime: float = 0.0
    minexectime: float = 0.0
    maxexectime: float = 0.0
    avgwaittime: float = 0.0
    avgexectime: float = 0.0


class Conditions(WireModel):
    colonyname: str = ""
    executornames: list[str] | None = None  # None = any executor of the type; kept as sent
    executortype: str = ""
    dependencies: NullList[str] = Field(default_factory=list)
    nodes: int = 0
    cpu: str = ""
    processes: int = 0
    processespernode: int = 0
    mem: str = ""
    storage: str = ""
    gpu: Gpu = Field(default_factory=Gpu)
    walltime: int = 0


class SnapshotMount(WireModel):
    snapshotid: str = ""
    label: str = ""
    dir: str = ""
    keepfiles: bool = False
    keepsnapshot: bool = False


class SyncDirMount(WireModel):
    label: str = ""
    dir: str = ""
    keepfiles: bool = False
    onconflicts: dict[str, Any] = Field(default_factory=dict)


class Fs(WireModel):
    mount: str = ""
    snapshots: list[SnapshotMount] | None = None
    dirs: list[SyncDirMount] | None = None


class FuncSpec(WireModel):
    """What to run. Defaults follow pycolonies' `func_spec()`: -1 = no wait/exec limit, retry forever
    (a 0 maxexectime would mean "deadline already passed" on the Go server, protocol §6.3)."""

    nodename: str = ""
    funcname: str = ""
    args: NullList[Any] = Field(default_factory=list)
    kwargs: dict[str, Any] | None = None
    priority: int = 0
    maxwaittime: int = -1
    maxexectime: int = -1
    maxretries: int = -1
    conditions: Conditions = Field(default_factory=Conditions)
    label: str = ""
    fs: Fs | None = None
    env: NullDict[str] = Field(default_factory=dict)
    channels: NullList[str] = Field(default_factory=list)


class Attribute(WireModel):
    attributeid: str = ""
    targetid: str = ""
    targetcolonyname: str = ""
    targetprocessgraphid: str = ""
    state: int = 0
    attributetype: int = AttributeType.OUT
    key: str = ""
    value: str = ""


class Process(WireModel):
    processid: str = ""
    initiatorid: str = ""
    initiatorname: str = ""
    assignedexecutorid: str = ""
    isassigned: bool = False
    state: ProcessState = ProcessState.WAITING
    prioritytime: int = 0
    submissiontime: Time = ZERO_TIME
    starttime: Time = ZERO_TIME
    endtime: Time = ZERO_TIME
    waitdeadline: Time = ZERO_TIME
    execdeadline: Time = ZERO_TIME
    retries: int = 0
    attributes: NullList[Attribute] = Field(default_factory=list)
    spec: FuncSpec = Field(default_factory=FuncSpec)
    waitforparents: bool = False
    parents: NullList[str] = Field(default_factory=list)
    children: NullList[str] = Field(default_factory=list)
    processgraphid: str = ""
    input: NullList[Any] = Field(default_factory=list, alias="in")
    output: NullList[Any] = Field(default_factory=list, alias="out")
    errors: NullList[str] = Field(default_factory=list)


class WorkflowSpec(WireModel):
    colonyname: str = ""
    functionspecs: NullList[FuncSpec] = Field(default_factory=list)


class NodeData(WireModel):
    label: str = ""


class Position(WireModel):
    x: int = 0
    y: int = 0


class NodeStyle(WireModel):
    color: str = ""
    background: str = ""


class GraphNode(WireModel):
    id: str = ""
    data: NodeData = Field(default_factory=NodeData)
    position: Position = Field(default_factory=Position)
    type: str = ""
    style: NodeStyle = Field(default_factory=NodeStyle)


class Edge(WireModel):
    id: str = ""
    source: str = ""
    target: str = ""
    animated: bool = False


class ProcessGraph(WireModel):
    processgraphid: str = ""
    initiatorid: str = ""
    initiatorname: str = ""
    colonyname: str = ""
    rootprocessids: NullList[str] = Field(default_factory=list)
    state: ProcessState = ProcessState.WAITING
    submissiontime: Time = ZERO_TIME
    starttime: Time = ZERO_TIME
    endtime: Time = ZERO_TIME
    processids: NullList[str] = Field(default_factory=list)
    nodes: NullList[GraphNode] = Field(default_factory=list)
    edges: NullList[Edge] = Field(default_factory=list)


class Log(WireModel):
    processid: str = ""
    colonyname: str = ""
    executorname: str = ""
    message: str = ""
    timestamp: int = 0  # Unix nanoseconds, UTC

    @property
    def time(self) -> datetime:
        return datetime(1970, 1, 1, tzinfo=timezone.utc) + timedelta(microseconds=self.timestamp // 1000)


class Statistics(WireModel):
    """Colony statistics (`getcolonystatsmsg`) and server statistics (`getstatisticsmsg`)."""

    colonies: int = 0
    executors: int = 0
    activeexecutors: int = 0
    unregisteredexecutors: int = 0
    waitingprocesses: int = 0
    runningprocesses: int = 0
    successfulprocesses: int = 0
    failedprocesses: int = 0
    waitingworkflows: int = 0
    runningworkflows: int = 0
    successfulworkflows: int = 0
    failedworkflows: int = 0


class Cron(WireModel):
    cronid: str = ""
    initiatorid: str = ""
    initiatorname: str = ""
    colonyname: str = ""
    name: str = ""
    cronexpression: str = ""
    interval: int = 0
    random: bool = False
    nextrun: Time = ZERO_TIME
    lastrun: Time = ZERO_TIME
    workflowspec: str = ""  # the WorkflowSpec as a JSON *string*, as the server stores it
    prevprocessgraphid: str = ""
    waitforprevprocessgraph: bool = False
    checkerperiod: int = 0


class Generator(WireModel):
    generatorid: str = ""
    initiatorid: str = ""
    initiatorname: str = ""
    colonyname: str = ""
    name: str = ""
    workflowspec: str = ""
    trigger: int = 0
    timeout: int = 0
    firstpack: Time = ZERO_TIME
    lastrun: Time = ZERO_TIME
    queuesize: int = 0
    checkerperiod: int = 0
