"""A generic gRPC client that shares no code with Sluice (issue 13).

It knows only the standard reflection and health protocols, whose .proto
files come from Debian's grpc-proto package and are compiled with Debian's
protoc into a temporary directory. Everything about Envoy's rate limit
service it learns from the server by reflection: it finds the service whose
name ends in ".RateLimitService", fetches the file that defines it and every
file that one imports, builds the request and response classes from those
descriptors, and calls ShouldRateLimit with messages given as JSON (the
proto3 JSON mapping).

Usage: /usr/bin/python3 grpc_client.py HOST:PORT
Reads one call per line on stdin, {"rls": <RateLimitRequest as JSON>} or
{"health": "<service>"}, and answers each with one line on stdout, as soon
as it has the answer: {"ok": <RateLimitResponse as JSON, proto field
names>, "hex": <the same, re-encoded by this client, in hex>},
{"status": "SERVING"} or {"error": "<gRPC code name>"}. It prints "ready"
once it has discovered the service.
Run with Debian's /usr/bin/python3 and python3-grpcio, python3-protobuf,
grpc-proto and protobuf-compiler installed.
"""

import importlib.util
import json
import os
import subprocess
import sys
import tempfile

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool, json_format, message_factory

PROTOS = "/usr/share/grpc-proto"
REFLECTION = "grpc/reflection/v1alpha/reflection.proto"
HEALTH = "grpc/health/v1/health.proto"


def load(out, relative):
    """Imports the module protoc generated for `relative` under `out`."""
    path = os.path.join(out, relative.replace(".proto", "_pb2.py"))
    spec = importlib.util.spec_from_file_location(os.path.basename(path)[:-3], path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def unary(channel, path, request, response_class):
    call = channel.unary_unary(
        path,
        request_serializer=lambda m: m.SerializeToString(),
        response_deserializer=response_class.FromString,
    )
    return call(request, timeout=30)


class Reflection:
    """The server's reflection service (v1alpha: what every server answers)."""

    def __init__(self, channel, pb):
        self.pb = pb
        self.call = channel.stream_stream(
            "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
            request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=pb.ServerReflectionResponse.FromString,
        )

    def ask(self, **request):
        [answer] = list(self.call(iter([self.pb.ServerReflectionRequest(**request)]), timeout=30))
        if answer.HasField("error_response"):
            raise RuntimeError("reflection: %s" % answer.error_response.error_message)
        return answer

    def services(self):
        return [s.name for s in self.ask(list_services="").list_services_response.service]

    def files(self, **request):
        raw = self.ask(**request).file_descriptor_response.file_descriptor_proto
        return [descriptor_pb2.FileDescriptorProto.FromString(b) for b in raw]


def rate_limit_classes(reflection):
    """The service's full name and its method's request and response classes,
    built from the descriptors the server gives."""
    [service] = [s for s in reflection.services() if s.endswith(".RateLimitService")]
    files = {}
    todo = reflection.files(file_containing_symbol=service)
    while todo:
        file = todo.pop()
        if file.name in files:
            continue
        files[file.name] = file
        for dependency in file.dependency:
            if dependency not in files:
                todo.extend(reflection.files(file_by_filename=dependency))
    pool = descriptor_pool.DescriptorPool()
    added = set()

    def add(name):
        if name in added:
            return
        for dependency in files[name].dependency:
            add(dependency)
        pool.Add(files[name])
        added.add(name)

    for name in sorted(files):
        add(name)
    method = pool.FindServiceByName(service).FindMethodByName("ShouldRateLimit")
    factory = message_factory.MessageFactory(pool)
    return (
        service,
        factory.GetPrototype(method.input_type),
        factory.GetPrototype(method.output_type),
    )


def main():
    address = sys.argv[1]
    with tempfile.TemporaryDirectory() as out:
        subprocess.run(["protoc", "-I", PROTOS, "--python_out", out, REFLECTION, HEALTH], check=True)
        reflection_pb = load(out, REFLECTION)
        health_pb = load(out, HEALTH)
    with grpc.insecure_channel(address) as channel:
        service, request_class, response_class = rate_limit_classes(Reflection(channel, reflection_pb))
        print("ready", flush=True)
        for line in sys.stdin:
            call = json.loads(line)
            try:
                if "rls" in call:
                    request = json_format.ParseDict(call["rls"], request_class())
                    response = unary(channel, "/%s/ShouldRateLimit" % service, request, response_class)
                    answer = {
                        "ok": json_format.MessageToDict(response, preserving_proto_field_name=True),
                        "hex": response.SerializeToString().hex(),
                    }
                else:
                    request = health_pb.HealthCheckRequest(service=call["health"])
                    response = unary(channel, "/grpc.health.v1.Health/Check", request, health_pb.HealthCheckResponse)
                    answer = {"status": health_pb.HealthCheckResponse.ServingStatus.Name(response.status)}
            except grpc.RpcError as error:
                answer = {"error": error.code().name}
            print(json.dumps(answer), flush=True)


if __name__ == "__main__":
    main()
