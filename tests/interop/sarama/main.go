// The sarama side of tests/interop/sarama.test.ts: one scenario per run, chosen by the second
// argument, against the broker at the first; prints one JSON line of what it saw and exits 0, or
// prints the error and exits 1. Built offline by the test from Debian's golang-go and
// golang-github-shopify-sarama-dev (sarama 1.22, GOPATH mode).
package main

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/Shopify/sarama"
)

func config() *sarama.Config {
	cfg := sarama.NewConfig()
	cfg.Version = sarama.V2_1_0_0 // the newest sarama 1.22 knows; zstd needs ≥ 2.1
	cfg.ClientID = "sluice-sarama-interop"
	cfg.Producer.Return.Successes = true
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Producer.Partitioner = sarama.NewManualPartitioner // every message names its partition
	cfg.Consumer.Return.Errors = true
	return cfg
}

func must(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func out(v interface{}) {
	b, err := json.Marshal(v)
	must(err)
	fmt.Println(string(b))
}

func admin(addr string) {
	a, err := sarama.NewClusterAdmin([]string{addr}, config())
	must(err)
	defer a.Close()
	retention := "123456"
	must(a.CreateTopic("sar-admin", &sarama.TopicDetail{NumPartitions: 3, ReplicationFactor: 1,
		ConfigEntries: map[string]*string{"retention.ms": &retention}}, false))
	dup := a.CreateTopic("sar-admin", &sarama.TopicDetail{NumPartitions: 1, ReplicationFactor: 1}, false)
	topics, err := a.ListTopics()
	must(err)
	entries, err := a.DescribeConfig(sarama.ConfigResource{Type: sarama.TopicResource, Name: "sar-admin"})
	must(err)
	configs := map[string]string{}
	for _, e := range entries {
		if e.Name == "retention.ms" || e.Name == "cleanup.policy" {
			configs[e.Name] = e.Value
		}
	}
	must(a.CreatePartitions("sar-admin", 5, nil, false))
	md, err := a.DescribeTopics([]string{"sar-admin"})
	must(err)
	must(a.DeleteTopic("sar-admin"))
	gone := false
	for i := 0; i < 50 && !gone; i++ {
		t, err := a.ListTopics()
		must(err)
		_, still := t["sar-admin"]
		gone = !still
		time.Sleep(100 * time.Millisecond)
	}
	out(map[string]interface{}{
		"listed": topics["sar-admin"].NumPartitions, "dup": fmt.Sprint(dup), "configs": configs,
		"grown": len(md[0].Partitions), "gone": gone,
	})
}

func produceConsume(addr string) {
	type sent struct {
		Offset int64  `json:"offset"`
		Value  string `json:"value"`
	}
	var all []sent
	for _, codec := range []sarama.CompressionCodec{sarama.CompressionNone, sarama.CompressionGZIP,
		sarama.CompressionSnappy, sarama.CompressionLZ4, sarama.CompressionZSTD} {
		cfg := config()
		cfg.Producer.Compression = codec
		cfg.Producer.Idempotent = codec == sarama.CompressionNone // the first round is idempotent
		if cfg.Producer.Idempotent {
			cfg.Net.MaxOpenRequests = 1
		}
		p, err := sarama.NewSyncProducer([]string{addr}, cfg)
		must(err)
		var msgs []*sarama.ProducerMessage
		for i := 0; i < 40; i++ {
			v := append([]byte(codec.String()+"-"+strconv.Itoa(i)+"-"), byte(i), 0, 255)
			msgs = append(msgs, &sarama.ProducerMessage{Topic: "sar-data", Partition: 0,
				Key: sarama.StringEncoder(fmt.Sprintf("%s-%d", codec, i)), Value: sarama.ByteEncoder(v),
				Headers:   []sarama.RecordHeader{{Key: []byte("codec"), Value: []byte(codec.String())}},
				Timestamp: time.Unix(1700000000, 0).Add(time.Duration(len(all)+i) * time.Millisecond)})
		}
		must(p.SendMessages(msgs))
		for _, m := range msgs {
			v, _ := m.Value.Encode()
			all = append(all, sent{m.Offset, hex.EncodeToString(v)})
		}
		must(p.Close())
	}
	c, err := sarama.NewConsumer([]string{addr}, config())
	must(err)
	pc, err := c.ConsumePartition("sar-data", 0, sarama.OffsetOldest)
	must(err)
	type got struct {
		Offset    int64  `json:"offset"`
		Key       string `json:"key"`
		Value     string `json:"value"`
		Header    string `json:"header"`
		Timestamp int64  `json:"timestamp"`
	}
	var received []got
	timeout := time.After(20 * time.Second)
	for len(received) < len(all) {
		select {
		case m := <-pc.Messages():
			h := ""
			if len(m.Headers) > 0 {
				h = string(m.Headers[0].Value)
			}
			received = append(received, got{m.Offset, string(m.Key), hex.EncodeToString(m.Value), h,
				m.Timestamp.UnixNano() / int64(time.Millisecond)})
		case e := <-pc.Errors():
			must(e)
		case <-timeout:
			must(fmt.Errorf("only %d of %d messages consumed", len(received), len(all)))
		}
	}
	must(pc.Close())
	must(c.Close())
	out(map[string]interface{}{"sent": all, "got": received})
}

func offsets(addr string) {
	cl, err := sarama.NewClient([]string{addr}, config())
	must(err)
	defer cl.Close()
	p, err := sarama.NewSyncProducerFromClient(cl)
	must(err)
	for i := 0; i < 8; i++ {
		_, _, err := p.SendMessage(&sarama.ProducerMessage{Topic: "sar-time", Partition: 0,
			Value: sarama.StringEncoder(fmt.Sprintf("t%d", i)), Timestamp: time.Unix(1600000000+int64(i), 0)})
		must(err)
	}
	newest, err := cl.GetOffset("sar-time", 0, sarama.OffsetNewest)
	must(err)
	oldest, err := cl.GetOffset("sar-time", 0, sarama.OffsetOldest)
	must(err)
	at, err := cl.GetOffset("sar-time", 0, 1600000005000) // the first record at or after 5 s in
	must(err)
	after, err := cl.GetOffset("sar-time", 0, 1700000000000)
	must(err)
	out(map[string]interface{}{"newest": newest, "oldest": oldest, "at": at, "after": after})
}

type member struct {
	mu       sync.Mutex
	records  []string
	assigned []int32
	ready    chan struct{}
	once     sync.Once
}

func (m *member) Setup(s sarama.ConsumerGroupSession) error {
	m.mu.Lock()
	m.assigned = append([]int32(nil), s.Claims()["sar-group"]...)
	m.mu.Unlock()
	m.once.Do(func() { close(m.ready) })
	return nil
}
func (m *member) Cleanup(sarama.ConsumerGroupSession) error { return nil }
func (m *member) ConsumeClaim(s sarama.ConsumerGroupSession, c sarama.ConsumerGroupClaim) error {
	for msg := range c.Messages() {
		m.mu.Lock()
		m.records = append(m.records, string(msg.Value))
		m.mu.Unlock()
		s.MarkMessage(msg, "")
	}
	return nil
}

func group(addr string) {
	cfg := config()
	cfg.Consumer.Offsets.Initial = sarama.OffsetOldest
	cfg.Consumer.Offsets.CommitInterval = 100 * time.Millisecond
	a, err := sarama.NewClusterAdmin([]string{addr}, cfg)
	must(err)
	defer a.Close()
	must(a.CreateTopic("sar-group", &sarama.TopicDetail{NumPartitions: 4, ReplicationFactor: 1}, false))
	p, err := sarama.NewSyncProducer([]string{addr}, cfg)
	must(err)
	for i := 0; i < 40; i++ {
		_, _, err := p.SendMessage(&sarama.ProducerMessage{Topic: "sar-group", Partition: int32(i % 4),
			Value: sarama.StringEncoder(fmt.Sprintf("g%d", i))})
		must(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	members := []*member{{ready: make(chan struct{})}, {ready: make(chan struct{})}}
	var groups []sarama.ConsumerGroup
	var wg sync.WaitGroup
	for _, m := range members {
		g, err := sarama.NewConsumerGroup([]string{addr}, "sar-g", cfg)
		must(err)
		groups = append(groups, g)
		wg.Add(1)
		go func(m *member, g sarama.ConsumerGroup) {
			defer wg.Done()
			for ctx.Err() == nil {
				if err := g.Consume(ctx, []string{"sar-group"}, m); err != nil && ctx.Err() == nil {
					fmt.Fprintln(os.Stderr, "consume:", err)
					time.Sleep(100 * time.Millisecond)
				}
			}
		}(m, g)
	}
	total := func() (n int, split []int) {
		for _, m := range members {
			m.mu.Lock()
			n += len(m.records)
			split = append(split, len(m.assigned))
			m.mu.Unlock()
		}
		return
	}
	deadline := time.Now().Add(40 * time.Second)
	for time.Now().Before(deadline) {
		n, split := total()
		if n >= 40 && split[0]+split[1] == 4 && split[0] > 0 && split[1] > 0 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond) // a few commit intervals
	described, err := a.DescribeConsumerGroups([]string{"sar-g"})
	must(err)
	listed, err := a.ListConsumerGroups()
	must(err)
	cancel()
	wg.Wait()
	for _, g := range groups {
		must(g.Close()) // commits what was marked
	}
	committed, err := a.ListConsumerGroupOffsets("sar-g", map[string][]int32{"sar-group": {0, 1, 2, 3}})
	must(err)
	var offs []int64
	for i := int32(0); i < 4; i++ {
		offs = append(offs, committed.GetBlock("sar-group", i).Offset)
	}
	var seen []string
	var split []int
	for _, m := range members {
		seen = append(seen, m.records...)
		split = append(split, len(m.assigned))
	}
	sort.Strings(seen)
	out(map[string]interface{}{"seen": seen, "split": split, "listed": listed,
		"state": described[0].State, "protocol": described[0].Protocol, "members": len(described[0].Members),
		"committed": offs})
}

// legacy: sarama's own default config (Kafka 0.8.2: Produce v0 with message format v0, Fetch v0),
// then Kafka 0.10.0 (Produce v2 with format v1 and timestamps, Fetch v2); each reads back what both
// wrote, through the broker's conversions to and from its v2 batches.
func legacy(addr string) {
	type got struct {
		Offset    int64  `json:"offset"`
		Key       string `json:"key"`
		Value     string `json:"value"`
		Timestamp int64  `json:"timestamp"`
	}
	result := map[string]interface{}{}
	versions := []sarama.KafkaVersion{sarama.NewConfig().Version, sarama.V0_10_0_0}
	for round, version := range versions {
		cfg := sarama.NewConfig()
		cfg.Version = version
		cfg.Producer.Return.Successes = true
		cfg.Producer.Partitioner = sarama.NewManualPartitioner
		var offsets []int64
		for _, codec := range []sarama.CompressionCodec{sarama.CompressionNone, sarama.CompressionGZIP, sarama.CompressionSnappy} {
			cfg.Producer.Compression = codec
			p, err := sarama.NewSyncProducer([]string{addr}, cfg)
			must(err)
			var msgs []*sarama.ProducerMessage
			for i := 0; i < 5; i++ {
				msgs = append(msgs, &sarama.ProducerMessage{Topic: "sar-legacy", Partition: 0,
					Key:       sarama.StringEncoder(fmt.Sprintf("r%d-%s-%d", round, codec, i)),
					Value:     sarama.StringEncoder(fmt.Sprintf("value %d", i)),
					Timestamp: time.Unix(1650000000, 0).Add(time.Duration(i) * time.Second)})
			}
			must(p.SendMessages(msgs))
			for _, m := range msgs {
				offsets = append(offsets, m.Offset)
			}
			must(p.Close())
		}
		c, err := sarama.NewConsumer([]string{addr}, cfg)
		must(err)
		pc, err := c.ConsumePartition("sar-legacy", 0, sarama.OffsetOldest)
		must(err)
		var received []got
		timeout := time.After(20 * time.Second)
		for len(received) < 15*(round+1) {
			select {
			case m := <-pc.Messages():
				ts := int64(-1)
				if !m.Timestamp.IsZero() && m.Timestamp.Unix() > 0 {
					ts = m.Timestamp.UnixNano() / int64(time.Millisecond)
				}
				received = append(received, got{m.Offset, string(m.Key), string(m.Value), ts})
			case e := <-pc.Errors():
				must(e)
			case <-timeout:
				must(fmt.Errorf("round %d: only %d messages consumed", round, len(received)))
			}
		}
		must(pc.Close())
		must(c.Close())
		result[fmt.Sprintf("sent%d", round)] = offsets
		result[fmt.Sprintf("got%d", round)] = received
	}
	out(result)
}

func main() {
	if len(os.Args) != 3 {
		must(fmt.Errorf("usage: %s bootstrap scenario", os.Args[0]))
	}
	switch os.Args[2] {
	case "admin":
		admin(os.Args[1])
	case "produce-consume":
		produceConsume(os.Args[1])
	case "offsets":
		offsets(os.Args[1])
	case "group":
		group(os.Args[1])
	case "legacy":
		legacy(os.Args[1])
	default:
		must(fmt.Errorf("unknown scenario %q", os.Args[2]))
	}
}
