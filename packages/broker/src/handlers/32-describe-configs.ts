// DescribeConfigs (key 32), versions 0–4. Resources: TOPIC (2) and BROKER (4).
// Every config is listed with its value and source (TOPIC_CONFIG 1, DYNAMIC_BROKER_CONFIG 2,
// STATIC_BROKER_CONFIG 4, DEFAULT_CONFIG 5); v0 reports isDefault instead of a source.
// v1+: synonyms when includeSynonyms (topic override → broker config → default). v3+: config
// type and documentation when includeDocumentation. v4+: flexible.

import type { DescribeConfigsRequest, DescribeConfigsResponse } from "@sluice/protocol";
import { decodeDescribeConfigsRequest, ErrorCode, encodeDescribeConfigsResponse } from "@sluice/protocol";
import { BROKER_CONFIGS, type ConfigDef, TOPIC_CONFIGS } from "../config.ts";
import type { BrokerContext } from "../context.ts";
import { defineHandler } from "./types.ts";

export const ConfigSource = {
  TOPIC_CONFIG: 1,
  DYNAMIC_BROKER_CONFIG: 2,
  STATIC_BROKER_CONFIG: 4,
  DEFAULT_CONFIG: 5,
} as const;
export const ResourceType = { TOPIC: 2, BROKER: 4 } as const;
const CONFIG_TYPE: Record<string, number> = { boolean: 1, string: 2, int: 3, long: 5, double: 6, list: 7 };

export interface DescribedConfig {
  name: string;
  value: string | null;
  readOnly: boolean;
  isDefault: boolean;
  configSource: number;
  isSensitive: boolean;
  synonyms: { name: string; value: string | null; source: number }[];
  configType: number;
  documentation: string | null;
}

function brokerSource(b: BrokerContext, name: string): number {
  if (b.config.dynamic.has(name)) return ConfigSource.DYNAMIC_BROKER_CONFIG;
  if (b.config.explicit.has(name)) return ConfigSource.STATIC_BROKER_CONFIG;
  return ConfigSource.DEFAULT_CONFIG;
}

function brokerSynonyms(b: BrokerContext, def: ConfigDef): DescribedConfig["synonyms"] {
  const out: DescribedConfig["synonyms"] = [];
  if (b.config.dynamic.has(def.name))
    out.push({ name: def.name, value: b.config.dynamic.get(def.name)!, source: ConfigSource.DYNAMIC_BROKER_CONFIG });
  if (b.config.explicit.has(def.name))
    out.push({ name: def.name, value: b.config.explicit.get(def.name)!, source: ConfigSource.STATIC_BROKER_CONFIG });
  out.push({ name: def.name, value: def.default, source: ConfigSource.DEFAULT_CONFIG });
  return out;
}

export function describeTopicConfigs(
  b: BrokerContext,
  overrides: Record<string, string>,
  synonyms: boolean,
  docs: boolean,
): DescribedConfig[] {
  return [...TOPIC_CONFIGS].map(([name, def]) => {
    const override = overrides[name];
    const source = override !== undefined ? ConfigSource.TOPIC_CONFIG : brokerSource(b, def.name);
    const syn = synonyms
      ? [
          ...(override !== undefined ? [{ name, value: override, source: ConfigSource.TOPIC_CONFIG }] : []),
          ...brokerSynonyms(b, def),
        ]
      : [];
    return {
      name,
      value: override ?? b.config.get(def.name),
      readOnly: false,
      isDefault: source === ConfigSource.DEFAULT_CONFIG,
      configSource: source,
      isSensitive: false,
      synonyms: syn,
      configType: CONFIG_TYPE[def.type] ?? 0,
      documentation: docs ? def.doc : null,
    };
  });
}

export function describeBrokerConfigs(b: BrokerContext, synonyms: boolean, docs: boolean): DescribedConfig[] {
  return BROKER_CONFIGS.map((def) => {
    let value: string | null;
    try {
      value = b.config.get(def.name);
    } catch {
      value = null;
    }
    const source = brokerSource(b, def.name);
    return {
      name: def.name,
      value,
      readOnly: def.readOnly ?? false,
      isDefault: source === ConfigSource.DEFAULT_CONFIG,
      configSource: source,
      isSensitive: false,
      synonyms: synonyms ? brokerSynonyms(b, def) : [],
      configType: CONFIG_TYPE[def.type] ?? 0,
      documentation: docs ? def.doc : null,
    };
  });
}

export const describeConfigsHandler = defineHandler<DescribeConfigsRequest, DescribeConfigsResponse>({
  apiKey: 32,
  name: "DescribeConfigs",
  minVersion: 0,
  maxVersion: 4,
  decode: (r, v) => decodeDescribeConfigsRequest(r, v),
  encode: (w, res, v) => encodeDescribeConfigsResponse(w, res, v),
  handle(req, ctx) {
    const b = ctx.broker;
    const results = req.resources.map((res) => {
      const base = { resourceType: res.resourceType, resourceName: res.resourceName };
      let configs: DescribedConfig[];
      if (res.resourceType === ResourceType.TOPIC) {
        const t = b.topics.get(res.resourceName);
        if (!t)
          return {
            ...base,
            errorCode: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
            errorMessage: `topic ${res.resourceName} does not exist`,
            configs: [],
          };
        configs = describeTopicConfigs(b, t.record.configs, req.includeSynonyms, req.includeDocumentation);
      } else if (res.resourceType === ResourceType.BROKER) {
        if (res.resourceName !== "" && res.resourceName !== String(b.nodeId)) {
          return {
            ...base,
            errorCode: ErrorCode.INVALID_REQUEST,
            errorMessage: `unknown broker ${res.resourceName}`,
            configs: [],
          };
        }
        configs = describeBrokerConfigs(b, req.includeSynonyms, req.includeDocumentation);
      } else {
        return {
          ...base,
          errorCode: ErrorCode.INVALID_REQUEST,
          errorMessage: `unsupported resource type ${res.resourceType}`,
          configs: [],
        };
      }
      if (res.configurationKeys !== null) configs = configs.filter((c) => res.configurationKeys!.includes(c.name));
      return { ...base, errorCode: ErrorCode.NONE, errorMessage: null, configs };
    });
    return { throttleTimeMs: 0, results };
  },
});
