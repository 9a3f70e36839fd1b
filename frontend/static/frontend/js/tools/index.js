// Annotation tools, one module each; the editor offers them in this order.
// A brush tool would be another entry here.
import { polygonTool } from "./polygon.js";

export const TOOLS = [polygonTool];
