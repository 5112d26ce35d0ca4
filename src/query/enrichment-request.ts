/** The `enrichment` plan. (Stub: to be defined with its route.) */
export interface EnrichmentPlan {
  kind: 'enrichment';
}
