import {
  request as httpRequest,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type OutgoingHttpHeaders,
  type ServerResponse,
} from "node:http";
import { randomUUID } from "node:crypto";

/**
 * The plumbing of the local cloud's front door: read an AWS API request, say
 * which service and action it is, pass it to moto unchanged, and write an
 * answer or an AWS-shaped error back. Knows nothing about ECS semantics.
 */

export type Protocol = "json" | "query" | "rest";

export interface AwsRequest {
  readonly method: string;
  /** Path and query string, as received. */
  readonly url: string;
  readonly headers: IncomingHttpHeaders;
  readonly body: Buffer;
  /** Signing name from the SigV4 credential scope (ecs, dynamodb, events, ec2...); "unknown" when unsigned. */
  readonly service: string;
  /** From X-Amz-Target (JSON protocols) or the Action parameter (query protocols); "unknown" for REST calls. */
  readonly action: string;
  readonly protocol: Protocol;
}

/** Where forward() sends a request: moto, on loopback. */
export interface Upstream {
  readonly host: string;
  readonly port: number;
}

export interface HttpAnswer {
  /** The request's method; a HEAD answer keeps moto's content-length (the size of what a GET would return). */
  readonly method?: string;
  readonly status: number;
  readonly headers: Readonly<Record<string, string | readonly string[]>>;
  readonly body: Buffer;
}

/**
 * Hop-by-hop headers belong to one connection and must not be passed on;
 * content-length is set afresh from the buffered body, and Expect is moot
 * once the whole body has been read.
 */
const HOP_BY_HOP = new Set([
  "connection",
  "keep-alive",
  "transfer-encoding",
  "upgrade",
  "proxy-connection",
  "te",
  "trailer",
  "content-length",
  "expect",
]);

/** Fallback when a request is not signed: the X-Amz-Target prefixes of the JSON services the operator uses. */
const TARGET_PREFIX_SERVICE: Readonly<Record<string, string>> = {
  AmazonEC2ContainerServiceV20141113: "ecs",
  DynamoDB_20120810: "dynamodb",
  DynamoDBStreams_20120810: "dynamodb",
  AWSEvents: "events",
  AmazonSQS: "sqs",
};

export async function readBody(req: IncomingMessage, limit = 20 * 1024 * 1024): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    const buf = chunk as Buffer;
    size += buf.length;
    if (size > limit) throw new Error(`request body larger than ${limit} bytes`);
    chunks.push(buf);
  }
  return Buffer.concat(chunks);
}

export function describeRequest(method: string, url: string, headers: IncomingHttpHeaders, body: Buffer): AwsRequest {
  const target = header(headers, "x-amz-target");
  const contentType = header(headers, "content-type") ?? "";
  let action = "unknown";
  let protocol: Protocol = "rest";
  let targetService: string | undefined;
  if (target !== undefined) {
    const dot = target.lastIndexOf(".");
    action = target.slice(dot + 1);
    targetService = TARGET_PREFIX_SERVICE[target.slice(0, Math.max(dot, 0))];
    protocol = "json";
  } else {
    const query = new URL(url, "http://localhost").searchParams;
    const form = contentType.startsWith("application/x-www-form-urlencoded") ? new URLSearchParams(body.toString("utf8")) : undefined;
    const named = form?.get("Action") ?? query.get("Action");
    if (named) {
      action = named;
      protocol = "query";
    }
  }
  const service = signingService(headers, url) ?? targetService ?? "unknown";
  return { method, url, headers, body, service, action, protocol };
}

/**
 * A JSON-protocol call of the local cloud's own to moto, made on behalf of
 * `call` (signed, unchecked, as the client's was): `target` is the
 * X-Amz-Target API prefix, e.g. DynamoDB_20120810.
 */
export function forwardOwn(upstream: Upstream, call: AwsRequest, target: string, action: string, body: unknown): Promise<HttpAnswer> {
  return forward(upstream, {
    ...call,
    action,
    headers: {
      ...call.headers,
      "x-amz-target": `${target}.${action}`,
      "content-type": header(call.headers, "content-type") ?? "application/x-amz-json-1.0",
    },
    body: Buffer.from(JSON.stringify(body)),
  });
}

/** Passes the request to moto as it came (the Host header too, so URLs moto builds point back at us). */
export function forward(upstream: Upstream, req: AwsRequest): Promise<HttpAnswer> {
  const headers: OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(req.headers)) {
    if (value !== undefined && !HOP_BY_HOP.has(name)) headers[name] = value;
  }
  headers["content-length"] = String(req.body.length);
  return new Promise((resolve, reject) => {
    const out = httpRequest({ host: upstream.host, port: upstream.port, method: req.method, path: req.url, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("error", reject);
      res.on("end", () => {
        const answerHeaders: Record<string, string | readonly string[]> = {};
        for (const [name, value] of Object.entries(res.headers)) {
          if (value !== undefined && !HOP_BY_HOP.has(name)) answerHeaders[name] = value;
        }
        const length = res.headers["content-length"];
        if (req.method === "HEAD" && length !== undefined) answerHeaders["content-length"] = length;
        resolve({ method: req.method, status: res.statusCode ?? 502, headers: answerHeaders, body: Buffer.concat(chunks) });
      });
    });
    out.on("error", (err) =>
      reject(new Error(`moto at ${upstream.host}:${upstream.port} did not answer ${req.service}:${req.action}: ${err.message}`)),
    );
    out.end(req.body);
  });
}

export function send(res: ServerResponse, answer: HttpAnswer): void {
  const upstreamLength = answer.headers["content-length"];
  const length = answer.method === "HEAD" && upstreamLength !== undefined ? String(upstreamLength) : String(answer.body.length);
  res.writeHead(answer.status, { ...answer.headers, "content-length": length });
  res.end(answer.body);
}

export function jsonAnswer(status: number, value: unknown, contentType = "application/json"): HttpAnswer {
  return { status, headers: { "content-type": contentType, "x-amzn-requestid": randomUUID() }, body: Buffer.from(JSON.stringify(value)) };
}

/** A JSON answer that keeps moto's headers (request id, content type) but carries a rewritten body. */
export function withJsonBody(answer: HttpAnswer, value: unknown): HttpAnswer {
  return withBody(answer, Buffer.from(JSON.stringify(value)));
}

/** moto's answer, headers kept, with another body. */
export function withBody(answer: HttpAnswer, body: Buffer): HttpAnswer {
  // A checksum of moto's body (DynamoDB's x-amz-crc32) would not match the new one.
  const { "x-amz-crc32": _stale, ...headers } = answer.headers;
  return { ...answer, headers, body };
}

/** An error in the shape the SDK expects for the request's protocol, so it is parsed to the right exception class. */
export function awsError(req: AwsRequest, code: string, message: string, status = 400): HttpAnswer {
  const requestId = randomUUID();
  if (req.protocol === "query") {
    const xml =
      req.service === "ec2"
        ? `<?xml version="1.0" encoding="UTF-8"?><Response><Errors><Error><Code>${esc(code)}</Code><Message>${esc(message)}</Message></Error></Errors><RequestID>${requestId}</RequestID></Response>`
        : `<?xml version="1.0" encoding="UTF-8"?><ErrorResponse><Error><Type>${status >= 500 ? "Receiver" : "Sender"}</Type><Code>${esc(code)}</Code><Message>${esc(message)}</Message></Error><RequestId>${requestId}</RequestId></ErrorResponse>`;
    return { status, headers: { "content-type": "text/xml", "x-amzn-requestid": requestId }, body: Buffer.from(xml) };
  }
  if (req.service === "s3") {
    const xml = `<?xml version="1.0" encoding="UTF-8"?><Error><Code>${esc(code)}</Code><Message>${esc(message)}</Message><RequestId>${requestId}</RequestId></Error>`;
    return { status, headers: { "content-type": "application/xml", "x-amz-request-id": requestId }, body: Buffer.from(xml) };
  }
  const contentType = req.protocol === "json" ? (header(req.headers, "content-type") ?? "application/x-amz-json-1.1") : "application/json";
  return {
    status,
    headers: { "content-type": contentType, "x-amzn-requestid": requestId, "x-amzn-errortype": code },
    body: Buffer.from(JSON.stringify({ __type: code, message })),
  };
}

export function header(headers: IncomingHttpHeaders, name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/** The service of the SigV4 credential scope: Credential=AKID/20240101/us-east-1/ecs/aws4_request. */
function signingService(headers: IncomingHttpHeaders, url: string): string | undefined {
  const scope = header(headers, "authorization")?.match(/Credential=[^/]+\/\d{8}\/[^/]+\/([^/]+)\//)?.[1];
  if (scope !== undefined) return scope;
  const presigned = new URL(url, "http://localhost").searchParams.get("X-Amz-Credential");
  return presigned?.split("/")[3];
}

function esc(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}
