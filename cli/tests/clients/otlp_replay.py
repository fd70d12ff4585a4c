#!/usr/bin/env python3
"""Replays the spans of OTLP JSON Lines files through the OpenTelemetry Python SDK and its OTLP
exporter, to a receiver such as `journey serve`: a real client, not the receiver's own code.

Each span is re-created with the SDK: same name, ids (through an id generator that hands out
the recorded ones), remote parent, start and end times, attributes, and events with their
timestamps and attributes; the resource is the recorded one plus `test.input` (the file's
name), so that every input file stays its own scheduler instance, and the trace ids of the
n-th file have n XORed into their first byte, so that files holding copies of one journey
(the corrupted fixtures) do not send the same span twice. The lines as replayed (with
that resource attribute) are written to --write, for `journey check` to read the same spans.

Usage: otlp_replay.py --protocol grpc|http --endpoint URL [--gzip] --write FILE INPUT...
"""

import argparse
import json
import os
import sys

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanLimits, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.id_generator import IdGenerator
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, TraceFlags


class RecordedIds(IdGenerator):
    """Hands out the recorded ids of the next span (the SDK asks for a trace id only for a
    root span, then for the span id)."""

    def __init__(self):
        self.trace_id = 0
        self.span_id = 0

    def generate_trace_id(self):
        return self.trace_id

    def generate_span_id(self):
        return self.span_id


def value(v):
    """An OTLP JSON AnyValue as a Python attribute value."""
    if "stringValue" in v:
        return v["stringValue"]
    if "intValue" in v:
        return int(v["intValue"])
    if "doubleValue" in v:
        d = v["doubleValue"]
        return float(d) if not isinstance(d, str) else float(d.replace("Infinity", "inf"))
    if "boolValue" in v:
        return bool(v["boolValue"])
    if "arrayValue" in v:
        return [value(x) for x in v["arrayValue"].get("values", [])]
    raise ValueError(f"attribute value not replayable: {v}")


def attributes(kvs):
    return {kv["key"]: value(kv.get("value", {})) for kv in kvs or []}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--protocol", choices=["grpc", "http"], required=True)
    p.add_argument("--endpoint", required=True)
    p.add_argument("--gzip", action="store_true")
    p.add_argument("--write", required=True)
    p.add_argument("inputs", nargs="+")
    args = p.parse_args()

    if args.protocol == "grpc":
        from grpc import Compression
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        def exporter():
            return OTLPSpanExporter(
                endpoint=args.endpoint,
                insecure=True,
                compression=Compression.Gzip if args.gzip else Compression.NoCompression,
            )
    else:
        from opentelemetry.exporter.otlp.proto.http import Compression
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        def exporter():
            return OTLPSpanExporter(
                endpoint=args.endpoint + "/v1/traces",
                compression=Compression.Gzip if args.gzip else Compression.NoCompression,
            )

    providers = {}
    spans = 0
    with open(args.write, "w", encoding="utf-8") as out:
        for index, path in enumerate(args.inputs):
            name = os.path.basename(path)
            with open(path, encoding="utf-8") as f:
                for line in f:
                    if not line.strip():
                        continue
                    request = json.loads(line)
                    for rs in request.get("resourceSpans", []):
                        resource = rs.setdefault("resource", {})
                        resource.setdefault("attributes", []).append(
                            {"key": "test.input", "value": {"stringValue": name}}
                        )
                        attrs = attributes(resource["attributes"])
                        key = tuple(sorted((k, repr(v)) for k, v in attrs.items()))
                        if key not in providers:
                            ids = RecordedIds()
                            provider = TracerProvider(
                                resource=Resource(attrs),
                                id_generator=ids,
                                span_limits=SpanLimits(max_events=100000, max_attributes=1000,
                                                       max_event_attributes=1000),
                            )
                            provider.add_span_processor(BatchSpanProcessor(exporter(), max_queue_size=100000))
                            providers[key] = (provider, ids)
                        provider, ids = providers[key]
                        for ss in rs.get("scopeSpans", []):
                            tracer = provider.get_tracer(ss.get("scope", {}).get("name", "replay"))
                            for s in ss.get("spans", []):
                                spans += 1
                                first = (int(s["traceId"][:2], 16) ^ index) & 0xFF
                                s["traceId"] = f"{first:02x}" + s["traceId"][2:]
                                ids.trace_id = int(s["traceId"], 16)
                                ids.span_id = int(s["spanId"], 16)
                                context = None
                                if s.get("parentSpanId"):
                                    parent = SpanContext(
                                        trace_id=ids.trace_id,
                                        span_id=int(s["parentSpanId"], 16),
                                        is_remote=True,
                                        trace_flags=TraceFlags(TraceFlags.SAMPLED),
                                    )
                                    context = trace.set_span_in_context(NonRecordingSpan(parent))
                                span = tracer.start_span(
                                    s.get("name", ""),
                                    context=context,
                                    kind=SpanKind.INTERNAL,
                                    attributes=attributes(s.get("attributes")),
                                    start_time=int(s.get("startTimeUnixNano", 0)),
                                )
                                for e in s.get("events", []):
                                    span.add_event(
                                        e.get("name", ""),
                                        attributes=attributes(e.get("attributes")),
                                        timestamp=int(e.get("timeUnixNano", 0)),
                                    )
                                span.end(end_time=int(s.get("endTimeUnixNano", 0)))
                    out.write(json.dumps(request, separators=(",", ":")) + "\n")
    for provider, _ in providers.values():
        provider.shutdown()
    print(f"replayed {spans} spans from {len(args.inputs)} files over {args.protocol}", file=sys.stderr)


if __name__ == "__main__":
    main()
