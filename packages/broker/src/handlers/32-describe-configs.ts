// DescribeConfigs (key 32), versions 0–4. Resources: TOPIC (2) and BROKER (4).
// Every config is listed with its value and source (TOPIC_CONFIG 1, DYNAMIC_BROKER_CONFIG 2,
// STATIC_BROKER_CONFIG 4, DEFAULT_CONFIG 5); v0 reports isDefault instead of a source.
// v1+: synonyms when includeSynonyms (topic override → broker config → default). v3+: config
// type and documentation when includeDocumentation. v4+: flexible.

import type { DescribeConfigsRequest, DescribeConfigsResponse } from "@sluice/protocol";
import { decodeDescribeConfigsRequest, ErrorCode, encodeDescribeConfigsResponse } from "@sluice/protocol";
import { BROKER_CONFIGS, CONFIG_DEFS, type ConfigDef, TOPIC_CONFIGS } from "../config.ts";
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

/** The broker config and the ones it falls back to, most specific first. */
function chain(def: ConfigDef): string[] {
  return [def.name, ...(def.fallbacks ?? [])];
}

function brokerSource(b: BrokerContext, def: ConfigDef): number {
  const names = chain(def);
  if (names.some((n) => b.config.dynamic.has(n))) return ConfigSource.DYNAMIC_BROKER_CONFIG;
  if (names.some((n) => b.config.explicit.has(n))) return ConfigSource.STATIC_BROKER_CONFIG;
  return ConfigSource.DEFAULT_CONFIG;
}

/** Kafka's synonym order: dynamic, then static, then default, each along the fallback chain. */
function brokerSynonyms(b: BrokerContext, def: ConfigDef): DescribedConfig["synonyms"] {
  const out: DescribedConfig["synonyms"] = [];
  const names = chain(def);
  for (const n of names) {
    const v = b.config.dynamic.get(n);
    if (v !== undefined) out.push({ name: n, value: v, source: ConfigSource.DYNAMIC_BROKER_CONFIG });
  }
  for (const n of names) {
    const v = b.config.explicit.get(n);
    if (v !== undefined) out.push({ name: n, value: v, source: ConfigSource.STATIC_BROKER_CONFIG });
  }
  const last = names.at(-1)!;
  out.push({ name: last, value: CONFIG_DEFS.get(last)?.default ?? null, source: ConfigSource.DEFAULT_CONFIG });
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
    const source = override !== undefined ? ConfigSource.TOPIC_CONFIG : brokerSource(b, def);
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
    const source = brokerSource(b, def);
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
