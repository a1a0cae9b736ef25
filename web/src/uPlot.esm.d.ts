// The page imports uPlot as the server serves it (/app/uPlot.esm.js, from node_modules/uplot); its types
// are the package's own.
import uPlot from 'uplot'
export default uPlot
