package registry

import (
	"strings"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// eventTable is kube-apiserver's event printer; core/v1 and
// events.k8s.io/v1 events print the same (one internal type upstream).
func eventTable(cells func(obj runtime.Object) eventCells) *Table {
	ev := corev1.Event{}.SwaggerDoc()
	return &Table{
		Columns: []metav1.TableColumnDefinition{
			col("Last Seen", "string", ev["lastTimestamp"]),
			col("Type", "string", ev["type"]),
			col("Reason", "string", ev["reason"]),
			col("Object", "string", ev["involvedObject"]),
			wide(col("Subobject", "string", corev1.ObjectReference{}.SwaggerDoc()["fieldPath"])),
			wide(col("Source", "string", ev["source"])),
			col("Message", "string", ev["message"]),
			wide(col("First Seen", "string", ev["firstTimestamp"])),
			wide(col("Count", "string", ev["count"])),
			wide(nameCol),
		},
		Row: func(obj runtime.Object) ([]interface{}, error) {
			c := cells(obj)
			first := age(c.first)
			if c.first.IsZero() {
				first = microAge(c.eventTime)
			}
			last := age(c.last)
			if c.last.IsZero() {
				last = first
			}
			count := c.count
			if c.series != nil {
				last, count = microAge(c.series.LastObservedTime), c.series.Count
			} else if count == 0 {
				count = 1 // singleton events of the new API have no count
			}
			target := strings.ToLower(c.regarding.Kind)
			if c.regarding.Name != "" {
				target += "/" + c.regarding.Name
			}
			source := firstNonEmpty(c.source.Component, c.controller)
			if inst := firstNonEmpty(c.source.Host, c.instance); inst != "" {
				source += ", " + inst
			}
			return []interface{}{last, c.typ, c.reason, target, c.regarding.FieldPath, source, strings.TrimSpace(c.message), first, int64(count), c.name}, nil
		},
	}
}

// eventCells are the parts of an event its table shows.
type eventCells struct {
	name, typ, reason, message, controller, instance string
	regarding                                        corev1.ObjectReference
	source                                           corev1.EventSource
	first, last                                      metav1.Time
	eventTime                                        metav1.MicroTime
	count                                            int32
	series                                           *corev1.EventSeries
}

func coreEventCells(obj runtime.Object) eventCells {
	e := obj.(*corev1.Event)
	return eventCells{name: e.Name, typ: e.Type, reason: e.Reason, message: e.Message, controller: e.ReportingController, instance: e.ReportingInstance,
		regarding: e.InvolvedObject, source: e.Source, first: e.FirstTimestamp, last: e.LastTimestamp, eventTime: e.EventTime, count: e.Count, series: e.Series}
}

func eventsV1Cells(obj runtime.Object) eventCells {
	e := obj.(*eventsv1.Event)
	c := eventCells{name: e.Name, typ: e.Type, reason: e.Reason, message: e.Note, controller: e.ReportingController, instance: e.ReportingInstance,
		regarding: e.Regarding, source: e.DeprecatedSource, first: e.DeprecatedFirstTimestamp, last: e.DeprecatedLastTimestamp, eventTime: e.EventTime, count: e.DeprecatedCount}
	if e.Series != nil {
		c.series = &corev1.EventSeries{Count: e.Series.Count, LastObservedTime: e.Series.LastObservedTime}
	}
	return c
}

func eventsV1Behaviour(r *Resource) { r.Table = eventTable(eventsV1Cells) }

func microAge(t metav1.MicroTime) string {
	if t.IsZero() {
		return "<unknown>"
	}
	return age(metav1.NewTime(t.Time))
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}
