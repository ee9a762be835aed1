// The kafka-go side of tests/interop/kafka-go.test.ts: one scenario per run (second argument)
// against the broker at the first; prints one JSON line and exits 0, or prints the error and exits
// 1. Built offline by the test from Debian's golang-go and golang-github-segmentio-kafka-go-dev
// (kafka-go 0.2.1, GOPATH mode). kafka-go 0.2 writes message format v1 (Produce v2) and reads
// with Fetch v2, so everything it does goes through the broker's format conversions.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"sync"
	"time"

	kafka "github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/gzip"
	"github.com/segmentio/kafka-go/lz4"
	"github.com/segmentio/kafka-go/snappy"
)

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

func createTopic(addr, topic string, partitions int) {
	conn, err := kafka.Dial("tcp", addr)
	must(err)
	defer conn.Close()
	must(conn.CreateTopics(kafka.TopicConfig{Topic: topic, NumPartitions: partitions, ReplicationFactor: 1}))
}

func produceConsume(addr string) {
	createTopic(addr, "kg-data", 1)
	codecs := []struct {
		name  string
		codec kafka.CompressionCodec
	}{{"none", nil}, {"gzip", gzip.NewCompressionCodec()}, {"snappy", snappy.NewCompressionCodec()}, {"lz4", lz4.NewCompressionCodec()}}
	t0 := time.Unix(1650000000, 0)
	for _, c := range codecs {
		w := kafka.NewWriter(kafka.WriterConfig{Brokers: []string{addr}, Topic: "kg-data", CompressionCodec: c.codec,
			BatchTimeout: 10 * time.Millisecond})
		var msgs []kafka.Message
		for i := 0; i < 10; i++ {
			msgs = append(msgs, kafka.Message{Key: []byte(fmt.Sprintf("%s-%d", c.name, i)),
				Value: append([]byte(c.name+"-value-"), byte(i), 0, 255), Time: t0.Add(time.Duration(i) * time.Second)})
		}
		must(w.WriteMessages(context.Background(), msgs...))
		must(w.Close())
	}
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: []string{addr}, Topic: "kg-data", Partition: 0, MinBytes: 1, MaxBytes: 1 << 20})
	defer r.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	type got struct {
		Offset int64  `json:"offset"`
		Key    string `json:"key"`
		Value  []byte `json:"value"`
		Time   int64  `json:"time"`
	}
	var received []got
	for len(received) < 40 {
		m, err := r.ReadMessage(ctx)
		must(err)
		received = append(received, got{m.Offset, string(m.Key), m.Value, m.Time.UnixNano() / int64(time.Millisecond)})
	}
	out(map[string]interface{}{"got": received})
}

func group(addr string) {
	createTopic(addr, "kg-group", 4)
	w := kafka.NewWriter(kafka.WriterConfig{Brokers: []string{addr}, Topic: "kg-group", Balancer: &kafka.RoundRobin{},
		BatchTimeout: 10 * time.Millisecond})
	var msgs []kafka.Message
	for i := 0; i < 40; i++ {
		msgs = append(msgs, kafka.Message{Value: []byte(fmt.Sprintf("g%d", i))})
	}
	must(w.WriteMessages(context.Background(), msgs...))
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	// The members fetch until the 40 messages are all seen; then their pending fetches are cancelled.
	fetching, stopFetching := context.WithCancel(ctx)
	var mu sync.Mutex
	seen := map[string]bool{}
	var wg sync.WaitGroup
	readers := []*kafka.Reader{}
	for i := 0; i < 2; i++ {
		r := kafka.NewReader(kafka.ReaderConfig{Brokers: []string{addr}, Topic: "kg-group", GroupID: "kg-g",
			MinBytes: 1, MaxBytes: 1 << 20, MaxWait: 200 * time.Millisecond, HeartbeatInterval: 500 * time.Millisecond,
			// kafka-go 0.2.1's Close does not send LeaveGroup: the next join waits for these sessions to
			// expire, so they are as short as the broker allows (group.min.session.timeout.ms).
			SessionTimeout: 6 * time.Second})
		readers = append(readers, r)
		wg.Add(1)
		go func(r *kafka.Reader) {
			defer wg.Done()
			for {
				m, err := r.FetchMessage(fetching)
				if err != nil {
					if fetching.Err() == nil {
						fmt.Fprintln(os.Stderr, "fetch:", err)
					}
					return
				}
				if err := r.CommitMessages(ctx, m); err != nil {
					fmt.Fprintln(os.Stderr, "commit:", err)
				}
				mu.Lock()
				seen[string(m.Value)] = true
				if len(seen) == 40 {
					stopFetching()
				}
				mu.Unlock()
			}
		}(r)
	}
	wg.Wait()
	stopFetching()
	if ctx.Err() != nil {
		must(fmt.Errorf("only %d of 40 messages seen", len(seen)))
	}
	for _, r := range readers {
		must(r.Close())
	}
	// A new member of the group resumes after everything the two committed.
	must(w.WriteMessages(context.Background(), kafka.Message{Value: []byte("late")}))
	must(w.Close())
	n := kafka.NewReader(kafka.ReaderConfig{Brokers: []string{addr}, Topic: "kg-group", GroupID: "kg-g", MinBytes: 1, MaxBytes: 1 << 20})
	m, err := n.FetchMessage(ctx)
	must(err)

	must(n.Close())
	var values []string
	for v := range seen {
		values = append(values, v)
	}
	sort.Strings(values)
	out(map[string]interface{}{"seen": values, "resumed": string(m.Value)})
}

func main() {
	if len(os.Args) != 3 {
		must(fmt.Errorf("usage: %s bootstrap scenario", os.Args[0]))
	}
	switch os.Args[2] {
	case "produce-consume":
		produceConsume(os.Args[1])
	case "group":
		group(os.Args[1])
	default:
		must(fmt.Errorf("unknown scenario %q", os.Args[2]))
	}
}
