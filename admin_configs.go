package kpax

import (
	"context"
	"fmt"
	"strconv"
)

// ConfigResourceType is the kind of resource a config belongs to.
type ConfigResourceType int8

// The config resource types of DescribeConfigs and IncrementalAlterConfigs.
const (
	ConfigTopic         ConfigResourceType = 2
	ConfigBroker        ConfigResourceType = 4  // Name is a broker ID, or "" for the cluster-wide default
	ConfigBrokerLogger  ConfigResourceType = 8  // Name is a broker ID
	ConfigClientMetrics ConfigResourceType = 16 // KIP-714
	ConfigGroup         ConfigResourceType = 32 // KIP-848, Kafka 3.8+
)

// String returns the type's name, e.g. "topic".
func (t ConfigResourceType) String() string {
	switch t {
	case ConfigTopic:
		return "topic"
	case ConfigBroker:
		return "broker"
	case ConfigBrokerLogger:
		return "broker-logger"
	case ConfigClientMetrics:
		return "client-metrics"
	case ConfigGroup:
		return "group"
	}
	return fmt.Sprintf("ConfigResourceType(%d)", int8(t))
}

// ConfigResource names a resource that has configs.
type ConfigResource struct {
	Type ConfigResourceType
	Name string
}

// String returns the resource as its type and quoted name, e.g. topic "orders".
func (r ConfigResource) String() string { return fmt.Sprintf("%v %q", r.Type, r.Name) }

// check rejects a resource Kafka would reject, and returns the broker the
// request for it must go to (-1: any).
func (r ConfigResource) check() (int32, error) {
	switch r.Type {
	case ConfigTopic:
		return -1, checkTopic(r.Name)
	case ConfigBroker, ConfigBrokerLogger:
		if r.Name == "" && r.Type == ConfigBroker {
			return -1, nil
		}
		id, err := strconv.ParseInt(r.Name, 10, 32)
		if err != nil || id < 0 {
			return -1, invalidf("%v: want a broker ID", r)
		}
		return int32(id), nil
	case ConfigClientMetrics, ConfigGroup:
		if r.Name == "" {
			return -1, invalidf("%v: empty name", r)
		}
		return -1, nil
	}
	return -1, invalidf("unknown config resource type %d", int8(r.Type))
}

// ConfigSource says where a config's value comes from.
type ConfigSource int8

// The config sources of DescribeConfigs.
const (
	ConfigSourceUnknown              ConfigSource = 0
	ConfigSourceTopic                ConfigSource = 1 // dynamic topic config
	ConfigSourceDynamicBroker        ConfigSource = 2
	ConfigSourceDynamicDefaultBroker ConfigSource = 3
	ConfigSourceStaticBroker         ConfigSource = 4 // server.properties
	ConfigSourceDefault              ConfigSource = 5
	ConfigSourceDynamicBrokerLogger  ConfigSource = 6
	ConfigSourceClientMetrics        ConfigSource = 7
	ConfigSourceGroup                ConfigSource = 8
)

// String returns the source's name as Kafka's tools print it.
func (s ConfigSource) String() string {
	names := []string{"UNKNOWN", "DYNAMIC_TOPIC_CONFIG", "DYNAMIC_BROKER_CONFIG", "DYNAMIC_DEFAULT_BROKER_CONFIG",
		"STATIC_BROKER_CONFIG", "DEFAULT_CONFIG", "DYNAMIC_BROKER_LOGGER_CONFIG", "CLIENT_METRICS_CONFIG", "GROUP_CONFIG"}
	if s >= 0 && int(s) < len(names) {
		return names[s]
	}
	return fmt.Sprintf("ConfigSource(%d)", int8(s))
}

// ConfigEntry is one config of a resource.
type ConfigEntry struct {
	Name      string
	Value     *string // nil for a sensitive config, or one with no value
	Source    ConfigSource
	ReadOnly  bool
	Sensitive bool
	Synonyms  []ConfigSynonym // the values that would apply, most specific first
	Doc       string          // Kafka 3.0+ (DescribeConfigs v3)
}

// IsDefault reports whether the value is Kafka's default.
func (e ConfigEntry) IsDefault() bool { return e.Source == ConfigSourceDefault }

// ConfigSynonym is a value of a config at one level (topic, broker, default).
type ConfigSynonym struct {
	Name   string
	Value  *string
	Source ConfigSource
}

// ResourceConfigs is the configs of one resource.
type ResourceConfigs struct {
	Resource ConfigResource
	Configs  []ConfigEntry
	Err      error // e.g. ErrUnknownTopicOrPartition
}

// DescribeConfigs returns the configs of the resources, one result per
// resource in the order given, with synonyms and documentation. Names, if
// given, limits each result to those configs.
func (a *Admin) DescribeConfigs(ctx context.Context, names []string, resources ...ConfigResource) ([]ResourceConfigs, error) {
	if err := a.check(ctx); err != nil {
		return nil, err
	}
	if len(resources) == 0 {
		return nil, invalidf("no resources")
	}
	byNode := map[int32][]int{}
	for i, r := range resources {
		node, err := r.check()
		if err != nil {
			return nil, err
		}
		byNode[node] = append(byNode[node], i)
	}
	out := make([]ResourceConfigs, len(resources))
	for node, idx := range byNode {
		req := &DescribeConfigsRequest{IncludeSynonyms: true, IncludeDocumentation: true}
		for _, i := range idx {
			req.Resources = append(req.Resources, DescribeConfigsRequestResource{
				ResourceType: int8(resources[i].Type), ResourceName: resources[i].Name, ConfigurationKeys: names})
		}
		r, v, err := a.configRequest(ctx, node, req)
		if err != nil {
			return nil, err
		}
		got := map[ConfigResource]*DescribeConfigsResponseResult{}
		resp := r.(*DescribeConfigsResponse)
		for i, res := range resp.Results {
			got[ConfigResource{ConfigResourceType(res.ResourceType), res.ResourceName}] = &resp.Results[i]
		}
		for _, i := range idx {
			out[i] = describedConfigs(resources[i], got[resources[i]], v)
		}
	}
	s := summary{op: "DescribeConfigs"}
	for _, rc := range out {
		s.add(rc.Err)
	}
	return out, s.err()
}

func describedConfigs(r ConfigResource, res *DescribeConfigsResponseResult, version int16) ResourceConfigs {
	rc := ResourceConfigs{Resource: r}
	if res == nil {
		rc.Err = &ItemError{Item: r.String(), Err: ErrMissingResult}
		return rc
	}
	if rc.Err = itemErr(r.String(), res.ErrorCode, res.ErrorMessage); rc.Err != nil {
		return rc
	}
	for _, c := range res.Configs {
		e := ConfigEntry{Name: c.Name, Value: c.Value, Source: ConfigSource(c.ConfigSource), ReadOnly: c.ReadOnly,
			Sensitive: c.IsSensitive, Doc: deref(c.Documentation)}
		if version == 0 { // v0 has IsDefault, not ConfigSource
			e.Source = ConfigSourceUnknown
			if c.IsDefault {
				e.Source = ConfigSourceDefault
			}
		}
		for _, syn := range c.Synonyms {
			e.Synonyms = append(e.Synonyms, ConfigSynonym{Name: syn.Name, Value: syn.Value, Source: ConfigSource(syn.Source)})
		}
		rc.Configs = append(rc.Configs, e)
	}
	return rc
}

// configRequest sends a config request to the broker node, or any broker
// for node -1.
func (a *Admin) configRequest(ctx context.Context, node int32, req Request) (Response, int16, error) {
	if node < 0 {
		return a.request(ctx, req)
	}
	return a.requestBroker(ctx, node, req)
}

// ConfigOp is the operation of an incremental config change.
type ConfigOp int8

// The operations of IncrementalAlterConfigs.
const (
	ConfigSet      ConfigOp = 0 // set the value
	ConfigDelete   ConfigOp = 1 // revert to the default
	ConfigAppend   ConfigOp = 2 // add to a list value
	ConfigSubtract ConfigOp = 3 // remove from a list value
)

// ConfigChange is one change of a config.
type ConfigChange struct {
	Name  string
	Op    ConfigOp
	Value string // ignored by ConfigDelete
}

// AlterConfig is the changes to one resource's configs.
type AlterConfig struct {
	Resource ConfigResource
	Changes  []ConfigChange
}

// AlterConfigResult is the outcome of altering one resource's configs.
type AlterConfigResult struct {
	Resource ConfigResource
	Err      error // e.g. ErrInvalidConfig
}

// AlterConfigs changes configs incrementally (IncrementalAlterConfigs,
// Kafka 2.3+): configs not named keep their values. One result per
// resource in the order given. Broker configs with a broker ID go to that
// broker.
func (a *Admin) AlterConfigs(ctx context.Context, alters ...AlterConfig) ([]AlterConfigResult, error) {
	if err := a.check(ctx); err != nil {
		return nil, err
	}
	return a.alterConfigs(ctx, false, alters)
}

// ValidateAlterConfigs is AlterConfigs with validate-only set: the broker
// checks the changes and applies none.
func (a *Admin) ValidateAlterConfigs(ctx context.Context, alters ...AlterConfig) ([]AlterConfigResult, error) {
	if err := a.check(ctx); err != nil {
		return nil, err
	}
	return a.alterConfigs(ctx, true, alters)
}

func (a *Admin) alterConfigs(ctx context.Context, validate bool, alters []AlterConfig) ([]AlterConfigResult, error) {
	if len(alters) == 0 {
		return nil, invalidf("no resources")
	}
	byNode := map[int32][]int{}
	for i, al := range alters {
		node, err := al.Resource.check()
		if err != nil {
			return nil, err
		}
		if len(al.Changes) == 0 {
			return nil, invalidf("%v: no changes", al.Resource)
		}
		for _, c := range al.Changes {
			if c.Name == "" || c.Op < ConfigSet || c.Op > ConfigSubtract {
				return nil, invalidf("%v: config change %q op %d", al.Resource, c.Name, c.Op)
			}
		}
		byNode[node] = append(byNode[node], i)
	}
	out := make([]AlterConfigResult, len(alters))
	for node, idx := range byNode {
		req := &IncrementalAlterConfigsRequest{ValidateOnly: validate}
		for _, i := range idx {
			rr := IncrementalAlterConfigsRequestResource{ResourceType: int8(alters[i].Resource.Type), ResourceName: alters[i].Resource.Name}
			for _, c := range alters[i].Changes {
				rc := IncrementalAlterConfigsRequestResourceConfig{Name: c.Name, ConfigOperation: int8(c.Op)}
				if c.Op != ConfigDelete {
					rc.Value = ptr(c.Value)
				}
				rr.Configs = append(rr.Configs, rc)
			}
			req.Resources = append(req.Resources, rr)
		}
		r, _, err := a.configRequest(ctx, node, req)
		if err != nil {
			return nil, err
		}
		got := map[ConfigResource]*IncrementalAlterConfigsResponseItem{}
		resp := r.(*IncrementalAlterConfigsResponse)
		for i, res := range resp.Responses {
			got[ConfigResource{ConfigResourceType(res.ResourceType), res.ResourceName}] = &resp.Responses[i]
		}
		for _, i := range idx {
			res := AlterConfigResult{Resource: alters[i].Resource}
			if g := got[alters[i].Resource]; g == nil {
				res.Err = &ItemError{Item: res.Resource.String(), Err: ErrMissingResult}
			} else {
				res.Err = itemErr(res.Resource.String(), g.ErrorCode, g.ErrorMessage)
			}
			out[i] = res
		}
	}
	s := summary{op: "AlterConfigs"}
	for _, r := range out {
		s.add(r.Err)
	}
	return out, s.err()
}
