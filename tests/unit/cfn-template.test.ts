import { describe, expect, it } from "vitest";
import { motoParameterValue, retainedLogicalIds, serviceInput } from "../../src/localcloud/cloudformation-gaps.js";
import {
  evaluateConditions,
  parameterValues,
  parseTemplate,
  resolve,
  UnsupportedTemplateError,
} from "../../src/localcloud/cfn-template.js";

/** The local cloud's reading of CloudFormation templates (what it mends after moto's CloudFormation). */

const YAML = `
Parameters:
  Prefix: { Type: String, Default: saas }
  Mode: { Type: String, Default: Daemon }
  Subnets: { Type: "List<AWS::EC2::Subnet::Id>" }
  Topic: { Type: String, Default: "" }
Conditions:
  OnFargate: !Equals [!Ref Mode, Fargate]
  AsDaemon: !Not [!Condition OnFargate]
  HasTopic: !Not [!Equals [!Ref Topic, ""]]
Resources:
  Table:
    Type: AWS::DynamoDB::Table
    DeletionPolicy: Retain
    Properties: { TableName: !Sub "\${Prefix}-operator" }
  Alarm:
    Type: AWS::CloudWatch::Alarm
    Properties:
      AlarmName: !Sub \${Prefix}-x-\${!Literal}
      AlarmActions: !If [HasTopic, [!Ref Topic], !Ref AWS::NoValue]
      Joined: !Join [",", !Ref Subnets]
      Rule: !Join ["", [!Select [0, !Split [":listener/", "arn:x:listener/app/a/1/2"]], ":listener-rule/", "r"]]
      Arn: !GetAtt Table.Arn
`;

describe("parseTemplate and resolve", () => {
  const template = parseTemplate(YAML);
  const refs: Record<string, string | readonly string[]> = {
    ...parameterValues(template, { Subnets: "subnet-a,subnet-b" }),
    "AWS::Region": "us-east-1",
  };
  const conditions = evaluateConditions(template, refs);

  it("reads the short-form tags as their long forms", () => {
    expect(template.Resources["Table"]?.Properties).toEqual({ TableName: { "Fn::Sub": "${Prefix}-operator" } });
    expect(template.Resources["Alarm"]?.Properties?.["Arn"]).toEqual({ "Fn::GetAtt": ["Table", "Arn"] });
    expect(template.Conditions?.["AsDaemon"]).toEqual({ "Fn::Not": [{ Condition: "OnFargate" }] });
  });

  it("evaluates conditions, parameters with defaults and list parameters", () => {
    expect(conditions).toEqual({ OnFargate: false, AsDaemon: true, HasTopic: false });
    expect(refs["Subnets"]).toEqual(["subnet-a", "subnet-b"]);
    expect(evaluateConditions(template, { ...refs, Mode: "Fargate" })["AsDaemon"]).toBe(false);
  });

  it("resolves Sub (with a literal), If with NoValue, Join, Select, Split and GetAtt", () => {
    const ctx = { refs, conditions, resources: { Table: "saas-operator" }, attribute: () => "arn:table" };
    expect(resolve(template.Resources["Alarm"]?.Properties, ctx)).toEqual({
      AlarmName: "saas-x-${Literal}",
      Joined: "subnet-a,subnet-b",
      Rule: "arn:x:listener-rule/r",
      Arn: "arn:table",
    });
    const withTopic = { ...ctx, refs: { ...refs, Topic: "arn:sns" }, conditions: { ...conditions, HasTopic: true } };
    expect(resolve(template.Resources["Alarm"]?.Properties, withTopic)).toMatchObject({ AlarmActions: ["arn:sns"] });
  });

  it("refuses what it does not know, naming it, rather than guessing", () => {
    const ctx = { refs, conditions, resources: {} };
    expect(() => resolve({ "Fn::Base64": "x" }, ctx)).toThrow(UnsupportedTemplateError);
    expect(() => resolve({ "Fn::Base64": "x" }, ctx)).toThrow(/Fn::Base64/);
    expect(() => resolve({ Ref: "Nope" }, ctx)).toThrow(/Ref Nope/);
    expect(() => parameterValues(parseTemplate("Parameters: { X: { Type: String } }\nResources: {}"), {})).toThrow(/parameter X/);
  });

  it("finds retained resources in YAML as in JSON", () => {
    expect([...retainedLogicalIds(YAML)]).toEqual(["Table"]);
    expect([...retainedLogicalIds(JSON.stringify({ Resources: { A: { DeletionPolicy: "Retain" }, B: {} } }))]).toEqual(["A"]);
    expect([...retainedLogicalIds("not a template")]).toEqual([]);
  });
});

describe("moto's ways, mended", () => {
  it("reads moto's Python repr of a list parameter back as CloudFormation shows it", () => {
    expect(motoParameterValue("['subnet-1', 'subnet-2']")).toBe("subnet-1,subnet-2");
    expect(motoParameterValue("[]")).toBe("");
    expect(motoParameterValue("subnet-1,subnet-2")).toBe("subnet-1,subnet-2");
  });

  it("turns AWS::ECS::Service properties into CreateService's input, named from the physical id when unnamed", () => {
    const input = serviceInput(
      {
        Cluster: "ops",
        SchedulingStrategy: "REPLICA",
        DesiredCount: 2,
        NetworkConfiguration: { AwsvpcConfiguration: { Subnets: ["subnet-1"], AssignPublicIp: "ENABLED" } },
        Tags: [{ Key: "app", Value: "x" }],
      },
      "arn:aws:ecs:us-east-1:123456789012:service/ops/generated-name",
    );
    expect(input).toEqual({
      cluster: "ops",
      schedulingStrategy: "REPLICA",
      desiredCount: 2,
      networkConfiguration: { awsvpcConfiguration: { subnets: ["subnet-1"], assignPublicIp: "ENABLED" } },
      tags: [{ key: "app", value: "x" }],
      serviceName: "generated-name",
    });
  });
});
