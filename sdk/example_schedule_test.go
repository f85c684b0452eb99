package sdk_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/stent-go/stent/persistence/sqlite"
	"github.com/stent-go/stent/sdk"
)

var exampleReport = sdk.Durable("example_nightly_report", func(ctx context.Context, kind string) (string, error) {
	return kind + " report sent", nil
})

// A schedule every night at 02:00 in Paris, kept in the database: any
// serving executor on it starts each night's report once. A spec that does
// not parse is refused with the parser's message.
func ExampleExecutor_CreateSchedule() {
	ctx := context.Background()
	backend, err := sqlite.Open(":memory:")
	if err != nil {
		log.Fatal(err)
	}
	ex, err := sdk.Bootstrap(ctx, backend)
	if err != nil {
		log.Fatal(err)
	}
	defer func() {
		if err := ex.Close(); err != nil {
			log.Print(err)
		}
	}()

	info, err := ex.CreateSchedule(ctx, "nightly-report", "0 2 * * *", exampleReport.Name(), "daily",
		sdk.WithTimeZone("Europe/Paris"), sdk.WithOverlap(sdk.OverlapSkip), sdk.WithCatchupWindow(time.Hour))
	if err != nil {
		log.Fatal(err)
	}
	paris, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(info.Name, "next at", info.NextRunAt.In(paris).Format("15:04"), "in", paris)

	_, err = ex.CreateSchedule(ctx, "typo", "0 25 * * *", exampleReport.Name(), "daily")
	fmt.Println(err)
	// Output:
	// nightly-report next at 02:00 in Europe/Paris
	// sdk: schedule "typo": spec "0 25 * * *" does not parse: end of range (25) above maximum (23): 25
}
