import { render } from "preact";
import "./styles.css";

// One page for every view: the path picks it, and each view loads its own code.
const app = document.getElementById("app")!;
const path = location.pathname;

async function start() {
  if (path.startsWith("/join/")) {
    const { Guest } = await import("./guest/Guest");
    render(<Guest meetingId={decodeURIComponent(path.slice("/join/".length))} />, app);
  } else if (path.startsWith("/admin")) {
    const { Admin } = await import("./admin/Admin");
    render(<Admin />, app);
  } else {
    const { Panel } = await import("./panel/Panel");
    render(<Panel />, app);
  }
}
start();
