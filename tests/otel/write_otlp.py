#!/usr/bin/env python3
"""Writes GenAI spans with the OpenTelemetry Python SDK as an OTLP/JSON file, for
tests/golden_import.rs `an_otlp_file_written_by_the_opentelemetry_python_sdk_imports`.

The spans are made by the real SDK (TracerProvider, BatchSpanProcessor), encoded by the real
OTLP encoder (`opentelemetry.exporter.otlp.proto.common.trace_encoder.encode_spans`, the
protobuf `ExportTraceServiceRequest` the OTLP exporters send), and each export is written as one
line of OTLP/JSON, the JSONL file exporter format: protobuf's JSON mapping (lowerCamelCase,
64-bit integers as strings, enums as integers), with `traceId`, `spanId` and `parentSpanId` in
hex as OTLP/JSON requires (protobuf's generic mapping writes bytes as base64).

Two conversations, one in each form of the GenAI semantic conventions:
  - conv-sdk-attr: the attribute form (gen_ai.input.messages / gen_ai.output.messages JSON
    attributes, an execute_tool span with gen_ai.tool.* attributes);
  - the event form (gen_ai.user.message, gen_ai.assistant.message, gen_ai.tool.message and
    gen_ai.choice span events), without gen_ai.conversation.id: its trace is the conversation.
    Its tool call failed with a timeout.

    python3 tests/otel/write_otlp.py OUT.jsonl

.ci/run installs the pinned packages (tests/otel/requirements.txt) in a virtual environment,
runs this script and passes the file to the test in EVALGATE_OTLP_SDK_FILE.
"""

import json
import sys

from google.protobuf.json_format import MessageToDict
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.trace import SpanKind, Status, StatusCode


def hex_ids(node):
    """Protobuf's JSON mapping writes bytes as base64; OTLP/JSON writes trace and span ids in hex."""
    import base64

    if isinstance(node, dict):
        out = {}
        for k, v in node.items():
            if k in ("traceId", "spanId", "parentSpanId") and isinstance(v, str):
                out[k] = base64.b64decode(v).hex()
            else:
                out[k] = hex_ids(v)
        return out
    if isinstance(node, list):
        return [hex_ids(v) for v in node]
    return node


class OtlpJsonFileExporter(SpanExporter):
    """One line of OTLP/JSON per export."""

    def __init__(self, path):
        self.file = open(path, "w", encoding="utf-8")

    def export(self, spans):
        request = encode_spans(spans)
        body = MessageToDict(request, use_integers_for_enums=True)
        self.file.write(json.dumps(hex_ids(body), ensure_ascii=False) + "\n")
        self.file.flush()
        return SpanExportResult.SUCCESS

    def shutdown(self):
        self.file.close()


def attribute_form(tracer):
    user = {"role": "user", "parts": [{"type": "text", "content": "Has my order A1042 shipped yet?"}]}
    call = {"type": "tool_call", "id": "call_sdk_1", "name": "lookup_order", "arguments": {"order_id": "A1042"}}
    result = {"order_id": "A1042", "status": "shipped", "carrier": "UPS"}
    with tracer.start_as_current_span("invoke_agent refund-agent", kind=SpanKind.INTERNAL) as agent:
        agent.set_attribute("gen_ai.operation.name", "invoke_agent")
        agent.set_attribute("gen_ai.conversation.id", "conv-sdk-attr")
        with tracer.start_as_current_span("chat claude-sonnet-4-5-20250929", kind=SpanKind.CLIENT) as chat:
            chat.set_attribute("gen_ai.operation.name", "chat")
            chat.set_attribute("gen_ai.provider.name", "anthropic")
            chat.set_attribute("gen_ai.conversation.id", "conv-sdk-attr")
            chat.set_attribute("gen_ai.input.messages", json.dumps([user]))
            chat.set_attribute(
                "gen_ai.output.messages",
                json.dumps([{"role": "assistant", "parts": [call], "finish_reason": "tool_call"}]),
            )
        with tracer.start_as_current_span("execute_tool lookup_order", kind=SpanKind.INTERNAL) as tool:
            tool.set_attribute("gen_ai.operation.name", "execute_tool")
            tool.set_attribute("gen_ai.tool.name", "lookup_order")
            tool.set_attribute("gen_ai.tool.call.id", "call_sdk_1")
            tool.set_attribute("gen_ai.tool.call.arguments", json.dumps({"order_id": "A1042"}))
            tool.set_attribute("gen_ai.tool.call.result", json.dumps(result))
        with tracer.start_as_current_span("chat claude-sonnet-4-5-20250929", kind=SpanKind.CLIENT) as chat:
            chat.set_attribute("gen_ai.operation.name", "chat")
            chat.set_attribute("gen_ai.conversation.id", "conv-sdk-attr")
            history = [
                user,
                {"role": "assistant", "parts": [call]},
                {"role": "tool", "parts": [{"type": "tool_call_response", "id": "call_sdk_1", "response": result}]},
            ]
            chat.set_attribute("gen_ai.input.messages", json.dumps(history))
            chat.set_attribute(
                "gen_ai.output.messages",
                json.dumps(
                    [
                        {
                            "role": "assistant",
                            "parts": [{"type": "text", "content": "Yes: order A1042 has shipped with UPS."}],
                            "finish_reason": "stop",
                        }
                    ]
                ),
            )


def event_form(tracer):
    tool_calls = [
        {
            "id": "call_sdk_9",
            "type": "function",
            "function": {
                "name": "refund_order",
                "arguments": json.dumps({"order_id": "B7", "reason": "damaged", "amount": 12.5}),
            },
        }
    ]
    user = "Please refund order B7, the vase arrived broken."
    # One agent run, one trace; no span names the conversation.
    with tracer.start_as_current_span("invoke_agent refund-agent", kind=SpanKind.INTERNAL) as agent:
        agent.set_attribute("gen_ai.operation.name", "invoke_agent")
        event_form_calls(tracer, user, tool_calls)


def event_form_calls(tracer, user, tool_calls):
    with tracer.start_as_current_span("chat gpt-4o-2024-08-06", kind=SpanKind.CLIENT) as chat:
        chat.set_attribute("gen_ai.operation.name", "chat")
        chat.set_attribute("gen_ai.system", "openai")
        chat.add_event("gen_ai.system.message", {"content": "You are the refund assistant."})
        chat.add_event("gen_ai.user.message", {"content": user})
        chat.add_event(
            "gen_ai.choice",
            {
                "index": 0,
                "finish_reason": "tool_calls",
                "message": json.dumps({"role": "assistant", "tool_calls": tool_calls}),
            },
        )
    with tracer.start_as_current_span("execute_tool refund_order", kind=SpanKind.INTERNAL) as tool:
        tool.set_attribute("gen_ai.operation.name", "execute_tool")
        tool.set_attribute("gen_ai.tool.name", "refund_order")
        tool.set_attribute("gen_ai.tool.call.id", "call_sdk_9")
        tool.set_attribute("gen_ai.tool.call.arguments", json.dumps({"order_id": "B7", "reason": "damaged", "amount": 12.5}))
        tool.set_attribute("error.type", "timeout")
        tool.set_status(Status(StatusCode.ERROR, "refund service did not answer within 30 s"))
    with tracer.start_as_current_span("chat gpt-4o-2024-08-06", kind=SpanKind.CLIENT) as chat:
        chat.set_attribute("gen_ai.operation.name", "chat")
        chat.add_event("gen_ai.user.message", {"content": user})
        chat.add_event("gen_ai.assistant.message", {"tool_calls": json.dumps(tool_calls)})
        chat.add_event("gen_ai.tool.message", {"id": "call_sdk_9", "content": "refund service did not answer within 30 s"})
        chat.add_event(
            "gen_ai.choice",
            {
                "index": 0,
                "finish_reason": "stop",
                "message": json.dumps(
                    {"role": "assistant", "content": "Sorry, the refund service timed out; a colleague will check order B7."}
                ),
            },
        )


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: write_otlp.py OUT.jsonl")
    provider = TracerProvider(resource=Resource.create({"service.name": "refund-agent"}))
    provider.add_span_processor(BatchSpanProcessor(OtlpJsonFileExporter(sys.argv[1])))
    tracer = provider.get_tracer("refund-agent", "1.5")
    attribute_form(tracer)
    event_form(tracer)
    provider.force_flush()
    provider.shutdown()


if __name__ == "__main__":
    main()
