package hostlist_test

import (
	"fmt"

	"github.com/shoal-sh/shoal/internal/hostlist"
)

func ExampleExpand() {
	names, err := hostlist.Expand("web[01-04].dc1!web03.dc1,db[1-2]", nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(names)
	_, err = hostlist.Expand("web[01-", nil)
	fmt.Println(err)
	// Output:
	// [db1 db2 web01.dc1 web02.dc1 web04.dc1]
	// web[01-: unclosed '[' at column 4
}

func ExampleExpand_tags() {
	tags := map[string]string{"web": "web[1-4]", "db": "db[1-2],web4"}
	opts := &hostlist.Options{Tags: func(name string) (string, error) {
		if x, ok := tags[name]; ok {
			return x, nil
		}
		return "", hostlist.ErrUnknownTag
	}}
	names, _ := hostlist.Expand("@web&@db", opts)
	fmt.Println(names)
	// Output: [web4]
}

func ExampleFold() {
	fmt.Println(hostlist.Fold([]string{"rack1-n01", "rack2-n02", "rack1-n02", "rack2-n01", "login1", "n10", "n9"}))
	// Output: login1,n[9-10],rack[1-2]-n[01-02]
}
