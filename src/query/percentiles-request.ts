/** The `percentiles` plan. (Stub: to be defined with its route.) */
export interface PercentilesPlan {
  kind: 'percentiles';
}
