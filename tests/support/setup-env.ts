// Tests only ever talk to moto on loopback: throwaway credentials, no profile,
// no instance metadata lookups (which would try a link-local address).
process.env["AWS_ACCESS_KEY_ID"] ??= "test";
process.env["AWS_SECRET_ACCESS_KEY"] ??= "test";
process.env["AWS_REGION"] ??= "us-east-1";
process.env["AWS_EC2_METADATA_DISABLED"] = "true";
delete process.env["AWS_PROFILE"];
// Node 20 runs the tests here; the SDK's notice that its 2027 releases need Node 22 is noise in test logs.
process.env["AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED"] ??= "true";
