package queue_test

import (
	"testing"

	"github.com/lasthit/lasthit/queue"
	"github.com/lasthit/lasthit/queue/logtest"
)

func TestMemoryLogContract(t *testing.T) {
	logtest.Run(t, func(t *testing.T) queue.Log {
		return queue.NewMemoryLog(queue.MemoryOptions{Retain: logtest.Retain})
	})
}
