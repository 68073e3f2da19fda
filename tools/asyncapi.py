"""The AsyncAPI 3.0 document of Qinglian's topics (schemas/json/asyncapi.json): the first thing
an integrator reads. Pure: builds a dictionary from the code, reads and writes nothing else.

Everything in it comes from the code, so a new topic appears by itself:
- which topics exist, who writes and who reads each (with its consumer group): the services'
  FastStream brokers, their publishers and subscribers. A topic no service writes is written by
  other hospital systems, and carries submissions of any event type (``AnySubmission``).
- what a topic carries and what keys its records: ``schemas.catalogue`` (``CATALOGUE`` for the
  fact topics, ``OUTPUTS`` for the others).
- what a topic is for: its docstring in schemas/topics.py; its retention: ``retention_ms``.
"""

import ast
import inspect
import re
import uuid
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_args

from faststream.kafka import KafkaBroker
from pydantic import BaseModel, TypeAdapter
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaMode

from schemas import topics
from schemas.catalogue import CATALOGUE, OUTPUTS, AnySubmission
from services.common.settings import KafkaSaslMechanism, ServiceSettings

SUBMISSIONS = "AnySubmission"
OTHER_SYSTEMS = "other hospital systems"
BINDING_VERSION = "0.5.0"
LOCAL_BOOTSTRAP = str(ServiceSettings.model_fields["kafka_bootstrap"].default)
SECURITY_SCHEME = "scramSha512"
_SCHEMA_REF = "#/components/schemas/{model}"


@dataclass(frozen=True)
class Message:
    """What one topic carries."""

    name: str
    title: str
    summary: str
    adapter: TypeAdapter[Any]
    mode: JsonSchemaMode
    key: dict[str, str]
    """The Kafka key, as a schema with its description."""


@dataclass
class Usage:
    """Who writes a topic and who reads it, by service."""

    writers: set[str] = field(default_factory=set)
    readers: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    """service → its consumer groups on the topic."""


def usage(brokers: Mapping[str, KafkaBroker]) -> dict[str, Usage]:
    """Each topic the services' brokers publish to or subscribe to, with who does which."""
    found: dict[str, Usage] = defaultdict(Usage)
    for service, broker in brokers.items():
        for publisher in broker.publishers:
            found[publisher.topic].writers.add(service)  # type: ignore[attr-defined]
        for subscriber in broker.subscribers:
            group = str(getattr(subscriber, "group_id", None) or "none: it commits nothing")
            for topic in subscriber.topic_names_for_subscribe:  # type: ignore[attr-defined]
                found[topic].readers[service].append(group)
    return dict(sorted(found.items()))


def topic_docstrings() -> dict[str, str]:
    """The docstring written under each topic name in schemas/topics.py, by address."""
    tree = ast.parse(Path(inspect.getfile(topics)).read_text(encoding="utf-8"))
    found = {}
    for statement, following in zip(tree.body, tree.body[1:], strict=False):
        if (
            isinstance(statement, ast.Assign)
            and isinstance(statement.value, ast.Constant)
            and isinstance(statement.value.value, str)
            and isinstance(following, ast.Expr)
            and isinstance(following.value, ast.Constant)
            and isinstance(following.value.value, str)
        ):
            found[statement.value.value] = " ".join(following.value.value.split())
    return found


def _purpose(topic: str, purposes: Mapping[str, str]) -> str:
    """What a topic is for; a raw sender's topic says whose it is."""
    if topic.startswith(topics.RAW_PREFIX):
        sender = topic.removeprefix(topics.RAW_PREFIX).removesuffix(".v1")
        return (
            f"The raw topic of the Kafka user `{sender}`, the only one who may write it. "
            + (purposes[topics.RAW_PREFIX])
        )
    return purposes.get(topic, "")


def _key(model: type[BaseModel], key_field: str) -> dict[str, str]:
    if model.model_fields[key_field].annotation is uuid.UUID:
        return {
            "type": "string",
            "format": "binary",
            "description": f"`{key_field}`: the UUID's 16 bytes, not its text.",
        }
    return {"type": "string", "description": f"`{key_field}`, UTF-8."}


def _first_line(model: type[BaseModel]) -> str:
    return (inspect.getdoc(model) or model.__name__).splitlines()[0]


def message_of(topic: str, written_by_services: bool) -> Message:
    for kind in CATALOGUE:
        if kind.topic == topic:
            return Message(
                name=kind.event.__name__,
                title=f"{kind.label_zh} {kind.label_en}",
                summary=_first_line(kind.event),
                adapter=TypeAdapter(kind.event),
                mode="serialization",
                key=_key(kind.event, kind.key_field),
            )
    for output in OUTPUTS:
        if output.topic == topic:
            return Message(
                name=output.message.__name__,
                title=output.message.__name__,
                summary=_first_line(output.message),
                adapter=TypeAdapter(output.message),
                mode="serialization",
                key=_key(output.message, output.key_field),
            )
    if written_by_services:
        raise ValueError(f"say what {topic} carries in schemas/catalogue.py OUTPUTS")
    return Message(
        name=SUBMISSIONS,
        title="事件提交 Submission of any event type",
        summary="One event as a source system sends it; `event_type` tells its type.",
        adapter=TypeAdapter(AnySubmission),
        mode="validation",
        key={
            "type": "string",
            "description": "Any, or none: intake does not read it (it keys the accepted event "
            "itself). A key per `source_ref` keeps a record's retries in order.",
        },
    )


def camel(topic: str) -> str:
    """``qinglian.dead-letters.v1`` → ``DeadLetters``."""
    words = re.sub(r"\.v\d+$", "", topic.removeprefix("qinglian.")).replace("-", ".").split(".")
    return "".join(word.capitalize() for word in words)


def _listed(names: Iterable[str]) -> str:
    return ", ".join(sorted(names))


def _readers(use: Usage) -> str:
    return "; ".join(
        f"{service} (consumer group {', '.join(f'`{group}`' for group in groups)})"
        for service, groups in sorted(use.readers.items())
    )


def channel_description(topic: str, use: Usage, message: Message, purpose: str) -> str:
    retention = topics.retention_ms(topic)
    kept = "forever" if retention < 0 else f"{retention // 86_400_000} days"
    lines = [
        purpose,
        "",
        f"- **Written by**: {_listed(use.writers) or OTHER_SYSTEMS}",
        f"- **Read by**: {_readers(use) or 'no Qinglian service'}",
        f"- **Message**: `{message.name}` ({message.summary})",
        f"- **Key**: {message.key['description']}",
        f"- **Kept**: {kept}",
    ]
    if not use.writers:
        lines += [
            "",
            f"Intake validates each record: an accepted one is published on its event type's "
            f"fact topic; one it refuses goes to `{topics.DEAD_LETTERS}` with the reason "
            f"(`not_json`, `invalid`, `conflict`, `forbidden`), the fields at fault and its "
            f"`source_system`.",
        ]
    return "\n".join(lines)


def _ref(*path: str) -> dict[str, str]:
    return {"$ref": "#/" + "/".join(part.replace("~", "~0").replace("/", "~1") for part in path)}


def operations(topic: str, use: Usage, message: Message) -> dict[str, Any]:
    """One operation for the services writing the topic, one per service reading it."""
    channel = _ref("channels", topic)
    messages = [_ref("channels", topic, "messages", message.name)]
    found: dict[str, Any] = {}
    if use.writers:
        found[f"publish{camel(topic)}"] = {
            "action": "send",
            "channel": channel,
            "messages": messages,
            "summary": f"{_listed(use.writers)} publish {message.name} on {topic}.",
            "description": f"Written by {_listed(use.writers)}.",
        }
    for service, groups in sorted(use.readers.items()):
        found[f"{service}Reads{camel(topic)}"] = {
            "action": "receive",
            "channel": channel,
            "messages": messages,
            "summary": f"{service} reads {message.name} from {topic}.",
            "bindings": {
                "kafka": {
                    "groupId": {"type": "string", "enum": sorted(groups)},
                    "bindingVersion": BINDING_VERSION,
                }
            },
        }
    return found


def servers(production_bootstrap: str) -> dict[str, Any]:
    return {
        "local": {
            "host": LOCAL_BOOTSTRAP,
            "protocol": "kafka",
            "description": "The development runtime (deploy/local/runtime.sh): one KRaft node "
            "on loopback, no login.",
        },
        "production": {
            "host": production_bootstrap,
            "protocol": "kafka",
            "description": "The hospital's broker (deploy/docker-compose.yml): a SASL_PLAINTEXT "
            "listener; every client logs in with its own user.",
            "security": [_ref("components", "securitySchemes", SECURITY_SCHEME)],
        },
    }


def security_schemes() -> dict[str, Any]:
    (mechanism,) = get_args(KafkaSaslMechanism)
    return {
        SECURITY_SCHEME: {
            "type": SECURITY_SCHEME,
            "description": f"SASL/{mechanism} on a SASL_PLAINTEXT listener: the password is "
            "never sent, but the traffic is not encrypted (keep the broker on the hospital's "
            "network). The operators create your user (deploy/secrets/README.md).",
        }
    }


def _as_asyncapi_schema(node: Any) -> Any:
    """AsyncAPI's Schema Object names the discriminator property by a string, where pydantic
    writes OpenAPI's object (its mapping repeats what each branch's const says)."""
    if isinstance(node, dict):
        return {
            name: value["propertyName"]
            if name == "discriminator" and isinstance(value, dict)
            else _as_asyncapi_schema(value)
            for name, value in node.items()
        }
    if isinstance(node, list):
        return [_as_asyncapi_schema(item) for item in node]
    return node


def component_schemas(
    messages: Iterable[Message], generator: type[GenerateJsonSchema]
) -> dict[str, Any]:
    unique = {message.name: message for message in messages}
    tops, definitions = TypeAdapter.json_schemas(
        [(name, message.mode, message.adapter) for name, message in unique.items()],
        ref_template=_SCHEMA_REF,
        schema_generator=generator,
    )
    schemas = dict(definitions.get("$defs", {}))
    for (name, _), top in tops.items():
        if top.get("$ref") != _SCHEMA_REF.format(model=name):
            schemas[name] = {"title": name, **top}
    converted: dict[str, Any] = _as_asyncapi_schema(dict(sorted(schemas.items())))
    return converted


def _message(message: Message) -> dict[str, Any]:
    return {
        "name": message.name,
        "title": message.title,
        "summary": message.summary,
        "contentType": "application/json",
        "payload": _ref("components", "schemas", message.name),
        "bindings": {"kafka": {"key": message.key, "bindingVersion": BINDING_VERSION}},
    }


def _info_description(submission_topics: list[str]) -> str:
    raw = ", ".join(f"`{topic}`" for topic in submission_topics)
    return "\n\n".join(
        [
            "How other hospital systems send events to Qinglian (清廉) over Kafka, and every "
            "topic its services write and read.",
            f"**Sending events.** Publish each event as one UTF-8 JSON record on {raw}, with "
            f"`event_type` naming its type (message `{SUBMISSIONS}`; one JSON Schema per type in "
            "schemas/json/, Chinese labels of every code in `x-labels-zh`). `source_system` names "
            "your system and `source_ref` is your own id of the record: a retry with the same "
            "`source_ref` and content is the same event and is published once. Times without an "
            "offset are read as hospital time (Asia/Shanghai).",
            "**What happens to it.** Intake validates the record, gives it a deterministic "
            "`event_id` and publishes it on its type's fact topic; a record it refuses goes to "
            f"`{topics.DEAD_LETTERS}` with the reason and the fields at fault (never the values "
            "you sent). Over HTTP the same events go to intake's `POST /v1/...` (OpenAPI at "
            "intake's /docs).",
            "**Servers.** `local` needs no login; `production` needs SASL/SCRAM-SHA-512 with the "
            "user the operators give you.",
        ]
    )


def document(
    brokers: Mapping[str, KafkaBroker],
    *,
    version: str,
    production_bootstrap: str,
    schema_generator: type[GenerateJsonSchema],
) -> dict[str, Any]:
    """The whole AsyncAPI 3.0 document."""
    purposes = topic_docstrings()
    channels: dict[str, Any] = {}
    all_operations: dict[str, Any] = {}
    messages: list[Message] = []
    for topic, use in usage(brokers).items():
        message = message_of(topic, written_by_services=bool(use.writers))
        messages.append(message)
        channels[topic] = {
            "address": topic,
            "title": message.title,
            "description": channel_description(topic, use, message, _purpose(topic, purposes)),
            "messages": {message.name: _ref("components", "messages", message.name)},
            "bindings": {
                "kafka": {
                    "topic": topic,
                    "topicConfiguration": {"retention.ms": topics.retention_ms(topic)},
                    "bindingVersion": BINDING_VERSION,
                }
            },
        }
        all_operations |= operations(topic, use, message)
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "Qinglian (清廉) event backbone",
            "version": version,
            "description": _info_description(
                [topic for topic, use in usage(brokers).items() if not use.writers]
            ),
        },
        "defaultContentType": "application/json",
        "servers": servers(production_bootstrap),
        "channels": channels,
        "operations": all_operations,
        "components": {
            "messages": {message.name: _message(message) for message in messages},
            "schemas": component_schemas(messages, schema_generator),
            "securitySchemes": security_schemes(),
        },
    }
