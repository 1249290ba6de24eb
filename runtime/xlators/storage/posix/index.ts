import { defineXlator, Xlator } from "../../../core/xlator";
import schema from "../../../../schema/xlators/storage/posix.json";

// Placeholder: passes every fop down until the real translator lands.
export default defineXlator({
  type: "storage/posix",
  schema,
  children: { min: 1, max: 1 },
  init: (init) => new Xlator(init),
});
