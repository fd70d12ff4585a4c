# Seeds the four fuzz corpora from tests/data/corrupted (run from the repository root):
# JSON Lines as they are, as 4-byte-framed JSON and protobuf records, behind the
# compressed_reader's mode byte, and as OTLP/HTTP bodies behind otlp_http_body's selector byte.
# Needs the opentelemetry-proto Python package.
import glob, os, struct, gzip, sys
from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
base = 'fuzz/corpus'
for t in ['check_reader','framed_reader','compressed_reader','otlp_http_body']:
    os.makedirs(f'{base}/{t}', exist_ok=True)
files = sorted(glob.glob('tests/data/corrupted/*.jsonl'))
n = 0
for f in files:
    data = open(f,'rb').read()
    if len(data) > 9000: continue
    name = os.path.basename(f)
    lines = [l for l in data.split(b'\n') if l.strip()]
    protos = []
    for l in lines:
        try:
            m = json_format.Parse(l, ExportTraceServiceRequest(), ignore_unknown_fields=True)
            protos.append(m.SerializeToString())
        except Exception as e:
            pass
    open(f'{base}/check_reader/{name}','wb').write(data)
    framed = b''.join(struct.pack('>I', len(p)) + p for p in protos)
    if framed: open(f'{base}/framed_reader/{name}.pb','wb').write(framed)
    open(f'{base}/framed_reader/{name}.json','wb').write(b''.join(struct.pack('>I', len(l)) + l for l in lines))
    open(f'{base}/compressed_reader/{name}.z','wb').write(b'\x00' + data)
    open(f'{base}/compressed_reader/{name}.gz','wb').write(b'\x01' + (framed or data))
    if protos:
        open(f'{base}/otlp_http_body/{name}.pb','wb').write(b'\x00' + protos[0])
        open(f'{base}/otlp_http_body/{name}.pbgz','wb').write(b'\x04' + gzip.compress(protos[0]))
    open(f'{base}/otlp_http_body/{name}.json','wb').write(b'\x01' + lines[0])
    n += 1
print(n, 'seed sets')
