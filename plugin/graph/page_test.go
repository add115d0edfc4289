package graph

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func TestParsePageNextLinkBeforeAndAfterValue(t *testing.T) {
	devices := []string{
		`{"id":"a","totalStorageSpaceInBytes":9007199254740993,"deviceName":"Zo\u00eb \"quoted\" \\ name"}`,
		`{"id":"b","deviceActionResults":[{"actionName":"retire"}],"configurationManagerClientEnabledFeatures":null}`,
	}
	value := "[" + strings.Join(devices, ",") + "]"
	link := "https://graph.microsoft.com/v1.0/deviceManagement/managedDevices?$top=2&$skiptoken=LastDeviceName%3d'x'%2cLastDeviceId%3d'y'"
	bodies := map[string]string{
		"before": `{"@odata.context":"ctx","@odata.count":5,"@odata.nextLink":"` + link + `","value":` + value + `}`,
		"after":  "{\n  \"@odata.context\": \"ctx\",\n  \"value\": " + value + ",\n  \"@odata.nextLink\": \"" + link + "\",\n  \"@odata.count\": 5\n}\n",
	}
	for name, body := range bodies {
		t.Run(name, func(t *testing.T) {
			page, err := ParsePage([]byte(body), nil)
			if err != nil {
				t.Fatal(err)
			}
			if page.NextLink != link {
				t.Errorf("nextLink = %q, want %q", page.NextLink, link)
			}
			if !page.HasCount || page.Count != 5 {
				t.Errorf("count = %d (%v), want 5", page.Count, page.HasCount)
			}
			if len(page.Devices) != len(devices) {
				t.Fatalf("got %d devices, want %d", len(page.Devices), len(devices))
			}
			for i, d := range page.Devices {
				if string(d) != devices[i] {
					t.Errorf("device %d = %s, want the exact bytes %s", i, d, devices[i])
				}
			}
		})
	}
}

func TestParsePageEscapedNextLink(t *testing.T) {
	body := `{"value":[],"@odata.nextLink":"https://graph.microsoft.com/v1.0/x?$skiptoken=LastDeviceName%3d\u0027O\u0027\u0027Brien\u0027\/"}`
	page, err := ParsePage([]byte(body), nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := "https://graph.microsoft.com/v1.0/x?$skiptoken=LastDeviceName%3d'O''Brien'/"; page.NextLink != want {
		t.Errorf("nextLink = %q, want %q", page.NextLink, want)
	}
}

func TestParsePageLastAndEmpty(t *testing.T) {
	for _, body := range []string{`{"value":[]}`, ` { "@odata.context" : "c" , "value" : [ ] , "@odata.nextLink" : null } `} {
		page, err := ParsePage([]byte(body), nil)
		if err != nil {
			t.Fatalf("%s: %v", body, err)
		}
		if len(page.Devices) != 0 || page.NextLink != "" || page.HasCount {
			t.Errorf("%s: got %+v, want an empty last page", body, page)
		}
	}
}

func TestParsePageRejectsBrokenBodies(t *testing.T) {
	full := `{"@odata.nextLink":"https://g/x","value":[{"id":"a","n":[1,2.5e3,-0,true,false,null]},{"id":"b"}]}`
	for cut := 0; cut < len(full); cut++ {
		if _, err := ParsePage([]byte(full[:cut]), nil); err == nil {
			t.Fatalf("truncated at %d (%q): no error", cut, full[:cut])
		}
	}
	if _, err := ParsePage([]byte(full[:40]), nil); !errors.Is(err, ErrTruncated) {
		t.Errorf("truncated body: err = %v, want ErrTruncated", err)
	}
	bad := []string{
		`{"value":{}}`, `{"value":[1,]}`, `{"value":[01]}`, `{"value":[tru]}`, `{"value":["a\x01"]}`,
		`{"value":["\q"]}`, `{"value":[],"value":[]}`, `{"nothing":1}`, `[]`, `{"value":[]} x`,
		`{"value":[{"a" 1}]}`, `{"value":[],"@odata.count":tru}`, `{"value":[],"@odata.nextLink":5}`,
		`{"value":[` + strings.Repeat("[", 600) + strings.Repeat("]", 600) + `]}`,
	}
	for _, b := range bad {
		if _, err := ParsePage([]byte(b), nil); err == nil {
			t.Errorf("%.60s: no error", b)
		}
	}
}

// FuzzParsePage checks the scanner against encoding/json: a body it
// accepts is valid JSON, and so is each device it returns.
func FuzzParsePage(f *testing.F) {
	f.Add([]byte(`{"@odata.nextLink":"https://g/x?a=1","value":[{"id":"a","n":1.5e-3},{"s":"\u00e9\\"}]}`))
	f.Add([]byte(`{"value":[],"@odata.count":0}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		page, err := ParsePage(body, nil)
		if err != nil {
			return
		}
		if !json.Valid(body) {
			t.Fatalf("ParsePage accepted a body encoding/json refuses: %q", body)
		}
		for i, d := range page.Devices {
			if !json.Valid(d) {
				t.Fatalf("device %d is not valid JSON: %q", i, d)
			}
		}
	})
}

// @odata.count only feeds a progress estimate: an IEEE754Compatible server
// quotes it, an odd one may send anything; neither fails the page.
func TestParsePageToleratesOddCounts(t *testing.T) {
	for body, want := range map[string]int64{
		`{"@odata.count":"2345","value":[{"id":"a"}]}`: 2345,
		`{"@odata.count":12,"value":[{"id":"a"}]}`:     12,
		`{"@odata.count":1.5,"value":[{"id":"a"}]}`:    -1,
		`{"@odata.count":null,"value":[{"id":"a"}]}`:   -1,
		`{"@odata.count":"many","value":[{"id":"a"}]}`: -1,
	} {
		page, err := ParsePage([]byte(body), nil)
		if err != nil || len(page.Devices) != 1 {
			t.Errorf("%s: devices %d, err %v", body, len(page.Devices), err)
			continue
		}
		if got := map[bool]int64{true: page.Count, false: -1}[page.HasCount]; got != want {
			t.Errorf("%s: count %d, want %d", body, got, want)
		}
	}
}
