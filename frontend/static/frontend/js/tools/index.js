// Annotation tools, one module each; the editor offers them in this order and switches
// with each tool's shortcut letter. Every tool edits the same polygons of AnnotationState.
import { polygonTool } from "./polygon.js";
import { brushTool, eraserTool } from "./brush.js";
import { boxTool } from "./box.js";
import { superpixelTool } from "./superpixel.js";

export const TOOLS = [polygonTool, brushTool, eraserTool, boxTool, superpixelTool];
