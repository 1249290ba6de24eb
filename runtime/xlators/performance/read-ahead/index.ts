import { defineXlator, Xlator } from "../../../core/xlator";
import schema from "../../../../schema/xlators/performance/read-ahead.json";

// Placeholder: passes every fop down until the real translator lands.
export default defineXlator({
  type: "performance/read-ahead",
  schema,
  children: { min: 1, max: 1 },
  init: (init) => new Xlator(init),
});
