package kpax

// consumerConfig holds the consumer's options; its defaults are part of
// defaultConfig and its checks part of validate.
type consumerConfig struct{}

func defaultConsumerConfig() consumerConfig { return consumerConfig{} }

func (c *consumerConfig) validate() []error { return nil }
